import { create } from 'zustand';

export type ColourMode = 'system' | 'light' | 'dark';

export interface Toast {
  id: number;
  message: string;
  severity: 'success' | 'error' | 'info' | 'warning';
}

interface UiState {
  mode: ColourMode;
  setMode(mode: ColourMode): void;
  toasts: Toast[];
  toast(message: string, severity?: Toast['severity']): void;
  dismiss(id: number): void;
}

const KEY = 'cp.colourMode';

function initialMode(): ColourMode {
  try {
    const m = window.localStorage.getItem(KEY);
    if (m === 'light' || m === 'dark' || m === 'system') return m;
  } catch {
    /* storage unavailable */
  }
  return 'system';
}

/** The mode shown: the chosen one, or the system's. */
export function resolvedMode(mode: ColourMode, prefersDark: boolean): 'light' | 'dark' {
  return mode === 'system' ? (prefersDark ? 'dark' : 'light') : mode;
}

let nextId = 1;

/** UI state: the colour mode (a preference, kept in localStorage) and the toasts. */
export const useUi = create<UiState>((set) => ({
  mode: initialMode(),
  setMode: (mode) => {
    try {
      window.localStorage.setItem(KEY, mode);
    } catch {
      /* storage unavailable */
    }
    set({ mode });
  },
  toasts: [],
  toast: (message, severity = 'success') =>
    set((s) => ({ toasts: [...s.toasts, { id: nextId++, message, severity }] })),
  dismiss: (id) => set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })),
}));

export const toast = (message: string, severity?: Toast['severity']) =>
  useUi.getState().toast(message, severity);
