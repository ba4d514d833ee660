import { DataOpsClient } from './api/client';
import { PolledModel } from './polled';
import {
  IDataOpsExperiment,
  IDataOpsMetricHistory,
  IDataOpsTrackedRun,
  IDataOpsTrackedRunDetail
} from './tokens';
import { errorMessage } from './utils';

/**
 * How often the experiments are fetched while the Experiments tab is shown.
 */
export const EXPERIMENTS_POLL_S = 15;

/**
 * A column of the runs table: a param, a metric, or one of the run's own.
 */
export interface IRunColumn {
  kind: 'param' | 'metric' | 'run';
  key: string;
}

export type SortOrder = { column: IRunColumn; ascending: boolean } | null;

/**
 * The value of a column for a run (a string or a number, or `undefined`).
 */
export function cellValue(
  run: IDataOpsTrackedRun,
  column: IRunColumn
): string | number | undefined {
  if (column.kind === 'param') {
    return run.params[column.key];
  }
  if (column.kind === 'metric') {
    return run.metrics[column.key];
  }
  if (column.key === 'name') {
    return run.name || run.mlflow_run_id.slice(0, 8);
  }
  if (column.key === 'status') {
    return run.status;
  }
  return run.start_time ?? undefined;
}

/**
 * The param and metric columns of `runs`; with `onlyDifferences`, only those
 * whose value is not the same in every run (MLflow's UI lost this toggle).
 */
export function runColumns(
  runs: IDataOpsTrackedRun[],
  onlyDifferences: boolean
): IRunColumn[] {
  const columns: IRunColumn[] = [];
  for (const kind of ['param', 'metric'] as const) {
    const keys = new Set<string>();
    for (const run of runs) {
      const values = kind === 'param' ? run.params : run.metrics;
      Object.keys(values)
        .filter(k => !k.startsWith('dataops.'))
        .forEach(k => keys.add(k));
    }
    for (const key of [...keys].sort()) {
      const column: IRunColumn = { kind, key };
      if (onlyDifferences && runs.length > 1) {
        const seen = new Set(runs.map(r => String(cellValue(r, column))));
        if (seen.size <= 1) {
          continue;
        }
      }
      columns.push(column);
    }
  }
  return columns;
}

/**
 * Runs ordered by a column; runs without a value go last.
 */
export function sortRuns(
  runs: IDataOpsTrackedRun[],
  order: SortOrder
): IDataOpsTrackedRun[] {
  if (order === null) {
    return runs;
  }
  const sign = order.ascending ? 1 : -1;
  return [...runs].sort((a, b) => {
    const x = cellValue(a, order.column);
    const y = cellValue(b, order.column);
    if (x === undefined || y === undefined) {
      return x === y ? 0 : x === undefined ? 1 : -1;
    }
    const nx = Number(x);
    const ny = Number(y);
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      return sign * (nx - ny);
    }
    return sign * String(x).localeCompare(String(y));
  });
}

/**
 * The experiments of the current user, the runs of the selected one, the
 * runs selected for comparison and their metric histories, as the
 * Experiments tab shows them.
 */
export class ExperimentsModel extends PolledModel {
  constructor(options: ExperimentsModel.IOptions) {
    super({ name: 'jupyter-dataops:experiments', interval: EXPERIMENTS_POLL_S });
    this.client = options.client;
  }

  readonly client: DataOpsClient;

  get experiments(): IDataOpsExperiment[] | null {
    return this._experiments;
  }

  /**
   * The URL of the MLflow UI, when the server has one configured.
   */
  get mlflowUiUrl(): string | null {
    return this._mlflowUiUrl;
  }

  get experiment(): IDataOpsExperiment | null {
    return this._experiments?.find(e => e.id === this._experimentId) ?? null;
  }

  get runs(): IDataOpsTrackedRun[] | null {
    return this._runs;
  }

  get filter(): string {
    return this._filter;
  }

  /**
   * Why the last search failed (a bad filter names its position).
   */
  get searchError(): string | null {
    return this._searchError;
  }

  get selected(): ReadonlySet<string> {
    return this._selected;
  }

  get detail(): IDataOpsTrackedRunDetail | null {
    return this._detail;
  }

  get detailError(): string | null {
    return this._detailError;
  }

  /**
   * Metric histories fetched so far: run id -> metric -> points.
   */
  history(runId: string, key: string): IDataOpsMetricHistory | null {
    return this._histories.get(`${runId}\u0000${key}`) ?? null;
  }

  startPolling(): void {
    void this.poll.start();
  }

  stopPolling(): void {
    void this.poll.stop();
  }

  async selectExperiment(id: string | null): Promise<void> {
    this._experimentId = id;
    this._runs = null;
    this._selected = new Set();
    this._detail = null;
    this.emitChanged();
    if (id !== null) {
      await this.search();
    }
  }

  async search(filter?: string): Promise<void> {
    if (filter !== undefined) {
      this._filter = filter;
    }
    const id = this._experimentId;
    if (id === null) {
      return;
    }
    try {
      const found = await this.client.searchRuns(id, { filter: this._filter });
      if (id === this._experimentId) {
        this._runs = found.runs;
        this._searchError = null;
      }
    } catch (reason) {
      this._searchError = errorMessage(reason);
    }
    this.emitChanged();
  }

  toggleSelected(runId: string): void {
    const next = new Set(this._selected);
    if (next.has(runId)) {
      next.delete(runId);
    } else {
      next.add(runId);
    }
    this._selected = next;
    this.emitChanged();
  }

  async openRun(runId: string | null): Promise<void> {
    this._detailError = null;
    if (runId === null) {
      this._detail = null;
      this.emitChanged();
      return;
    }
    try {
      this._detail = await this.client.getTrackedRun(runId);
    } catch (reason) {
      this._detail = null;
      this._detailError = errorMessage(reason);
    }
    this.emitChanged();
  }

  /**
   * Fetch the history of `key` for each of `runIds` not fetched yet.
   */
  async loadHistories(runIds: string[], key: string): Promise<void> {
    const missing = runIds.filter(id => !this.history(id, key));
    await Promise.all(
      missing.map(async id => {
        try {
          const h = await this.client.getMetricHistory(id, key);
          this._histories.set(`${id}\u0000${key}`, h);
        } catch {
          // A run without this metric has no line in the chart.
        }
      })
    );
    if (missing.length > 0) {
      this.emitChanged();
    }
  }

  protected async load(): Promise<void> {
    const list = await this.client.listExperiments();
    this._experiments = list.experiments;
    this._mlflowUiUrl = list.mlflow_ui_url;
    if (this._experimentId === null && list.experiments.length > 0) {
      this._experimentId = list.experiments[0].id;
    }
    if (this._experimentId !== null) {
      await this.search();
    }
  }

  private _experiments: IDataOpsExperiment[] | null = null;
  private _mlflowUiUrl: string | null = null;
  private _experimentId: string | null = null;
  private _runs: IDataOpsTrackedRun[] | null = null;
  private _filter = '';
  private _searchError: string | null = null;
  private _selected: Set<string> = new Set();
  private _detail: IDataOpsTrackedRunDetail | null = null;
  private _detailError: string | null = null;
  private _histories = new Map<string, IDataOpsMetricHistory>();
}

export namespace ExperimentsModel {
  export interface IOptions {
    client: DataOpsClient;
  }
}
