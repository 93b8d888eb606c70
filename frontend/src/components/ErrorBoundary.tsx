import { Component, type ErrorInfo, type ReactNode } from 'react';
import Alert from '@mui/material/Alert';
import AlertTitle from '@mui/material/AlertTitle';
import Button from '@mui/material/Button';
import { isChunkLoadError, loadFailureText } from '@/lib/loadFailure';

interface State {
  error: Error | null;
}

/** Keeps a failing page from taking the whole app down; offers to try again. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, State> {
  state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  componentDidUpdate(prev: { resetKey?: string }) {
    if (prev.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error('page failed', error, info.componentStack);
  }

  render() {
    if (!this.state.error) return this.props.children;
    // A page's chunk that did not arrive fails again on "Try again" (React.lazy keeps the
    // failed import): only a reload loads it.
    if (isChunkLoadError(this.state.error))
      return (
        <Alert
          severity="error"
          action={
            <Button onClick={() => window.location.reload()}>{loadFailureText.action}</Button>
          }
        >
          <AlertTitle>{loadFailureText.title}</AlertTitle>
          {loadFailureText.body}
        </Alert>
      );
    return (
      <Alert
        severity="error"
        action={<Button onClick={() => this.setState({ error: null })}>Try again</Button>}
      >
        <AlertTitle>This page failed</AlertTitle>
        {this.state.error.message}
      </Alert>
    );
  }
}
