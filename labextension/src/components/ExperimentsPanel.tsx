import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  cellValue,
  ExperimentsModel,
  IRunColumn,
  runColumns,
  SortOrder,
  sortRuns
} from '../experiments';
import { IDataOpsTrackedRun, IDataOpsTrackedRunDetail } from '../tokens';
import { IChartSeries, MetricChart } from './MetricChart';

export interface IExperimentsPanelProps {
  model: ExperimentsModel;
  /** Open the executed notebook of a job run (the Jobs tab's "Open output"). */
  onOpenJobOutput: (jobRunId: string) => void;
  /** Follow a job run's log in the main area. */
  onOpenJobLog: (jobRunId: string, label: string) => void;
  /** Re-run a job run's snapshot (after checking its datasets' versions). */
  onReproduce: (mlflowRunId: string) => void;
  trans: TranslationBundle;
}

type View = { kind: 'list' } | { kind: 'compare' } | { kind: 'run'; id: string };

/**
 * The Experiments tab: an experiment's runs as a sortable table of params and
 * metrics (with an "only differences" toggle), runs selected for comparison
 * with metric charts, and a run's details: datasets and versions it read,
 * its artifacts, its job run and executed notebook.
 */
export function ExperimentsPanel(props: IExperimentsPanelProps): JSX.Element {
  const { model, trans } = props;
  const [view, setView] = React.useState<View>({ kind: 'list' });
  const [filter, setFilter] = React.useState(model.filter);
  const [order, setOrder] = React.useState<SortOrder>(null);
  const [onlyDiff, setOnlyDiff] = React.useState(false);

  if (model.experiments === null) {
    return (
      <div className="jp-DataOps-muted">
        {model.error ?? trans.__('Loading experiments…')}
      </div>
    );
  }
  if (model.experiments.length === 0) {
    return (
      <div className="jp-DataOps-muted" data-test="dataops-experiments-empty">
        {trans.__(
          'No tracked runs yet. Every job run is one; in a notebook: with dops.run("name"): …'
        )}
      </div>
    );
  }
  if (view.kind === 'run') {
    return (
      <RunDetail
        {...props}
        onBack={() => {
          setView({ kind: 'list' });
          void model.openRun(null);
        }}
      />
    );
  }
  const runs = model.runs ?? [];
  if (view.kind === 'compare') {
    const chosen = runs.filter(r => model.selected.has(r.mlflow_run_id));
    return (
      <Compare
        model={model}
        runs={chosen}
        trans={trans}
        onBack={() => setView({ kind: 'list' })}
      />
    );
  }
  const columns = runColumns(runs, onlyDiff);
  const sorted = sortRuns(runs, order);
  const sortBy = (column: IRunColumn) =>
    setOrder(
      order && same(order.column, column)
        ? { column, ascending: !order.ascending }
        : { column, ascending: true }
    );
  const header = (column: IRunColumn, label: string) => {
    const active = order && same(order.column, column);
    return (
      <th
        key={`${column.kind}:${column.key}`}
        aria-sort={active ? (order.ascending ? 'ascending' : 'descending') : 'none'}
      >
        <button
          type="button"
          className="jp-DataOps-linkButton"
          data-test={`dataops-sort-${column.kind}-${column.key}`}
          onClick={() => sortBy(column)}
        >
          {label}
          {active ? (order.ascending ? ' ▲' : ' ▼') : ''}
        </button>
      </th>
    );
  };
  return (
    <div className="jp-DataOps-experiments" data-test="dataops-experiments">
      <label className="jp-DataOps-field">
        <span>{trans.__('Experiment')}</span>
        <select
          data-test="dataops-experiment-select"
          value={model.experiment?.id ?? ''}
          onChange={e => void model.selectExperiment(e.target.value)}
        >
          {model.experiments.map(e => (
            <option key={e.id} value={e.id}>
              {e.name} ({e.runs})
            </option>
          ))}
        </select>
      </label>
      <form
        className="jp-DataOps-searchForm"
        onSubmit={e => {
          e.preventDefault();
          void model.search(filter);
        }}
      >
        <input
          type="search"
          className="jp-DataOps-search"
          data-test="dataops-runs-filter"
          placeholder="metrics.rmse < 1 AND params.alpha = '0.1'"
          value={filter}
          onChange={e => setFilter(e.target.value)}
          aria-label={trans.__('Filter runs (MLflow search syntax)')}
        />
      </form>
      {model.searchError && (
        <div className="jp-DataOps-error" role="alert" data-test="dataops-runs-error">
          {model.searchError}
        </div>
      )}
      <div className="jp-DataOps-toolbarRow">
        <label>
          <input
            type="checkbox"
            data-test="dataops-only-differences"
            checked={onlyDiff}
            onChange={e => setOnlyDiff(e.target.checked)}
          />{' '}
          {trans.__('Only differences')}
        </label>
        <button
          type="button"
          className="jp-Button jp-mod-styled jp-mod-accept"
          data-test="dataops-compare"
          disabled={model.selected.size < 2}
          onClick={() => setView({ kind: 'compare' })}
        >
          {trans.__('Compare %1', model.selected.size)}
        </button>
      </div>
      <div className="jp-DataOps-tableScroll">
        <table className="jp-DataOps-table" data-test="dataops-runs-table">
          <thead>
            <tr>
              <th />
              {header({ kind: 'run', key: 'name' }, trans.__('Run'))}
              {header({ kind: 'run', key: 'status' }, trans.__('Status'))}
              {columns.map(c => header(c, `${c.kind === 'param' ? '' : '⚑ '}${c.key}`))}
            </tr>
          </thead>
          <tbody>
            {sorted.map(run => (
              <tr key={run.mlflow_run_id} data-test="dataops-tracked-run">
                <td>
                  <input
                    type="checkbox"
                    data-test="dataops-run-select"
                    aria-label={trans.__('Select %1 to compare', run.name)}
                    checked={model.selected.has(run.mlflow_run_id)}
                    onChange={() => model.toggleSelected(run.mlflow_run_id)}
                  />
                </td>
                <td>
                  <button
                    type="button"
                    className="jp-DataOps-linkButton"
                    data-test="dataops-open-tracked-run"
                    onClick={() => {
                      setView({ kind: 'run', id: run.mlflow_run_id });
                      void model.openRun(run.mlflow_run_id);
                    }}
                  >
                    {cellValue(run, { kind: 'run', key: 'name' })}
                  </button>
                </td>
                <td>{run.status}</td>
                {columns.map(c => (
                  <td key={`${c.kind}:${c.key}`}>{format(cellValue(run, c))}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function Compare(props: {
  model: ExperimentsModel;
  runs: IDataOpsTrackedRun[];
  trans: TranslationBundle;
  onBack: () => void;
}): JSX.Element {
  const { model, runs, trans } = props;
  const metrics = runColumns(runs, false).filter(c => c.kind === 'metric');
  const [metric, setMetric] = React.useState(metrics[0]?.key ?? '');
  const ids = runs.map(r => r.mlflow_run_id).join(',');
  React.useEffect(() => {
    if (metric) {
      void model.loadHistories(
        runs.map(r => r.mlflow_run_id),
        metric
      );
    }
  }, [metric, ids]);
  const series: IChartSeries[] = runs.map(r => ({
    label: r.name || r.mlflow_run_id.slice(0, 8),
    points: model.history(r.mlflow_run_id, metric)?.points ?? []
  }));
  const columns = runColumns(runs, true);
  return (
    <div className="jp-DataOps-compare" data-test="dataops-compare-view">
      <button type="button" className="jp-DataOps-linkButton" onClick={props.onBack}>
        ← {trans.__('Runs')}
      </button>
      <h3>{trans.__('%1 runs compared', runs.length)}</h3>
      <div className="jp-DataOps-tableScroll">
        <table className="jp-DataOps-table" data-test="dataops-compare-table">
          <thead>
            <tr>
              <th>{trans.__('Differs')}</th>
              {runs.map(r => (
                <th key={r.mlflow_run_id}>{r.name || r.mlflow_run_id.slice(0, 8)}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {columns.map(c => (
              <tr key={`${c.kind}:${c.key}`}>
                <th>{`${c.kind === 'param' ? '' : '⚑ '}${c.key}`}</th>
                {runs.map(r => (
                  <td key={r.mlflow_run_id}>{format(cellValue(r, c))}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {metrics.length > 0 && (
        <>
          <label className="jp-DataOps-field">
            <span>{trans.__('Metric')}</span>
            <select
              data-test="dataops-chart-metric"
              value={metric}
              onChange={e => setMetric(e.target.value)}
            >
              {metrics.map(m => (
                <option key={m.key} value={m.key}>
                  {m.key}
                </option>
              ))}
            </select>
          </label>
          <MetricChart title={metric} series={series} />
        </>
      )}
    </div>
  );
}

function RunDetail(
  props: IExperimentsPanelProps & { onBack: () => void }
): JSX.Element {
  const { model, trans } = props;
  const d: IDataOpsTrackedRunDetail | null = model.detail;
  const metrics = d ? Object.keys(d.summary.metrics).filter(k => !k.startsWith('dataops.')) : [];
  const ids = d?.info.mlflow_run_id ?? '';
  React.useEffect(() => {
    for (const key of metrics) {
      void model.loadHistories([ids], key);
    }
  }, [ids]);
  if (d === null) {
    return (
      <div>
        <button type="button" className="jp-DataOps-linkButton" onClick={props.onBack}>
          ← {trans.__('Runs')}
        </button>
        <div className={model.detailError ? 'jp-DataOps-error' : 'jp-DataOps-muted'}>
          {model.detailError ?? trans.__('Loading…')}
        </div>
      </div>
    );
  }
  const s = d.summary;
  const jobRun = d.info.run_id;
  const ui = model.mlflowUiUrl;
  return (
    <div className="jp-DataOps-trackedRun" data-test="dataops-tracked-run-detail">
      <button type="button" className="jp-DataOps-linkButton" onClick={props.onBack}>
        ← {trans.__('Runs')}
      </button>
      <h3>{s.name || s.mlflow_run_id}</h3>
      <dl className="jp-DataOps-dl">
        <dt>{trans.__('Status')}</dt>
        <dd data-test="dataops-tracked-status">{s.status}</dd>
        <dt>{trans.__('Experiment')}</dt>
        <dd>{d.info.experiment}</dd>
        <dt>{trans.__('Owner')}</dt>
        <dd>{s.owner}</dd>
        <dt>{trans.__('Notebook')}</dt>
        <dd>{s.notebook_path || '—'}</dd>
        <dt>{trans.__('MLflow run')}</dt>
        <dd>
          {ui ? (
            <a
              href={`${ui.replace(/\/$/, '')}/#/experiments/${d.info.experiment_id}/runs/${s.mlflow_run_id}`}
              target="_blank"
              rel="noreferrer"
            >
              {s.mlflow_run_id}
            </a>
          ) : (
            s.mlflow_run_id
          )}
        </dd>
      </dl>
      {jobRun && (
        <div className="jp-DataOps-toolbarRow">
          <button
            type="button"
            className="jp-Button jp-mod-styled"
            data-test="dataops-open-job-output"
            onClick={() => props.onOpenJobOutput(jobRun)}
          >
            {trans.__('Open executed notebook')}
          </button>
          <button
            type="button"
            className="jp-Button jp-mod-styled"
            data-test="dataops-open-job-log"
            onClick={() => props.onOpenJobLog(jobRun, `${d.info.experiment} ${jobRun.slice(0, 8)}`)}
          >
            {trans.__('Job run %1', jobRun.slice(0, 8))}
          </button>
          <button
            type="button"
            className="jp-Button jp-mod-styled"
            data-test="dataops-reproduce"
            title={trans.__(
              'Re-run this exact notebook snapshot with the same parameters'
            )}
            onClick={() => props.onReproduce(s.mlflow_run_id)}
          >
            {trans.__('Reproduce')}
          </button>
        </div>
      )}
      <h4>{trans.__('Parameters')}</h4>
      <KeyValues values={s.params} />
      <h4>{trans.__('Metrics')}</h4>
      <KeyValues values={pick(s.metrics, metrics)} />
      {metrics.map(key => (
        <MetricChart
          key={key}
          title={key}
          series={[{ label: s.name || ids.slice(0, 8), points: model.history(ids, key)?.points ?? [] }]}
        />
      ))}
      <h4>{trans.__('Datasets read')}</h4>
      {d.datasets.length === 0 ? (
        <div className="jp-DataOps-muted">{trans.__('No governed pulls.')}</div>
      ) : (
        <ul className="jp-DataOps-list" data-test="dataops-run-datasets">
          {d.datasets.map((r, i) => (
            <li key={i}>
              <strong>{r.dataset}</strong> <code>{r.version}</code>{' '}
              {r.is_current ? trans.__('(current)') : trans.__('(changed since: now %1)', r.current_version ?? '?')}
              {' · '}
              {trans.__('%1 rows', r.row_count ?? '?')}
              {r.filter ? ` · where ${r.filter}` : ''}
            </li>
          ))}
        </ul>
      )}
      <h4>{trans.__('Artifacts')}</h4>
      <ul className="jp-DataOps-list" data-test="dataops-run-artifacts">
        {d.artifacts.map(a => (
          <li key={a}>{a}</li>
        ))}
      </ul>
    </div>
  );
}

function KeyValues(props: { values: Record<string, string | number> }): JSX.Element {
  const entries = Object.entries(props.values);
  if (entries.length === 0) {
    return <div className="jp-DataOps-muted">—</div>;
  }
  return (
    <table className="jp-DataOps-table">
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{format(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function pick(
  values: Record<string, number>,
  keys: string[]
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) {
    out[k] = values[k];
  }
  return out;
}

function same(a: IRunColumn, b: IRunColumn): boolean {
  return a.kind === b.kind && a.key === b.key;
}

function format(v: string | number | undefined): string {
  if (v === undefined) {
    return '—';
  }
  if (typeof v === 'number') {
    return String(+v.toPrecision(6));
  }
  return v;
}
