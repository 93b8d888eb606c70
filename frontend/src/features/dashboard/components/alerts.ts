import { paths } from '@/config/paths';
import type { GovernanceSummary } from '../api/governance';
import type { SystemHealth } from '../api/health';
import type { Pipeline } from '../api/pipeline';
import type { Stats } from '../api/stats';

export interface AlertItem {
  id: string;
  severity: 'error' | 'warning' | 'info';
  text: string;
  /** The page that fixes it. */
  to: string;
  action: string;
}

const LAG_SECONDS = 5;

/** What needs an operator, each with the page where it is dealt with. */
export function buildAlerts(input: {
  health?: SystemHealth;
  stats?: Stats;
  pipeline?: Pipeline;
  budgets?: { exhausted: GovernanceSummary; warning: GovernanceSummary };
}): AlertItem[] {
  const out: AlertItem[] = [];
  const { health, stats, pipeline, budgets } = input;
  if (health && !health.ready) {
    out.push({
      id: 'ready',
      severity: 'error',
      text: 'The control plane is not ready (see Health)',
      to: `${paths.dashboard}#health`,
      action: 'Health',
    });
  }
  const breakers = budgets?.exhausted.open_breakers ?? [];
  if (breakers.length) {
    out.push({
      id: 'breakers',
      severity: 'error',
      text: `${breakers.length} circuit breaker${breakers.length > 1 ? 's' : ''} not closed: ${breakers.map((b) => `${b.name} (${b.state})`).join(', ')}`,
      to: paths.breakers,
      action: 'Circuit breakers',
    });
  } else if (
    stats &&
    stats.breakers.OPEN + stats.breakers.FORCED_OPEN + stats.breakers.HALF_OPEN > 0
  ) {
    out.push({
      id: 'breakers',
      severity: 'error',
      text: 'Circuit breakers are open',
      to: paths.breakers,
      action: 'Circuit breakers',
    });
  }
  if (budgets) {
    const ex = budgets.exhausted.counts.exhausted;
    if (ex > 0) {
      const names = budgets.exhausted.rows.map((r) => `${r.tenant_id}/${r.project_id}`).join(', ');
      out.push({
        id: 'exhausted',
        severity: 'error',
        text: `${ex} budget${ex > 1 ? 's' : ''} exhausted: ${names}${ex > budgets.exhausted.rows.length ? ', …' : ''}`,
        to: `${paths.governance}?status=exhausted`,
        action: 'Governance',
      });
    }
    const w = budgets.warning.counts.warning;
    if (w > 0) {
      out.push({
        id: 'warning',
        severity: 'warning',
        text: `${w} budget${w > 1 ? 's' : ''} at warning (${budgets.warning.warning_threshold_percent}% or more used)`,
        to: `${paths.governance}?status=warning`,
        action: 'Governance',
      });
    }
  }
  const dlq = stats?.open_dlq_entries ?? budgets?.exhausted.open_dlq_entries ?? 0;
  if (dlq > 0) {
    out.push({
      id: 'dlq',
      severity: 'warning',
      text: `${dlq} open dead letter${dlq > 1 ? 's' : ''}`,
      to: paths.dlq,
      action: 'Dead letters',
    });
  }
  const stuck = health?.publisher_stuck ?? pipeline?.this_process.publisher_stuck;
  if (stuck) {
    out.push({
      id: 'stuck',
      severity: 'error',
      text: `The publisher cannot publish the event at position ${stuck.position}: ${stuck.reason}`,
      to: `${paths.dashboard}#health`,
      action: 'Health',
    });
  }
  if (pipeline) {
    for (const [name, stage] of [
      ['Publisher', pipeline.publisher],
      ['Projection', pipeline.projector],
    ] as const) {
      if (stage.lag_events > 0 && stage.lag_seconds >= LAG_SECONDS) {
        out.push({
          id: `lag-${name}`,
          severity: 'warning',
          text: `${name} lag: ${stage.lag_events} events, ${stage.lag_seconds.toFixed(1)} s behind`,
          to: `${paths.dashboard}#health`,
          action: 'Health',
        });
      }
    }
  }
  return out;
}
