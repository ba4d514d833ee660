import { IDisposable } from '@lumino/disposable';
import { Debouncer } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { DataOpsClient, DataOpsRequestError } from './api/client';
import {
  IDataOpsCatalogModel,
  IDataOpsDatasetDetail,
  IDataOpsDatasetSummary,
  IDataOpsPreview,
  IDataOpsStatus,
  IDataOpsStatusModel
} from './tokens';
import { PolledModel, pollFrequency } from './polled';
import { errorMessage } from './utils';

/**
 * The status of the DataOps server extension, refreshed on demand and, while
 * some view is visible, every `refreshInterval` seconds.
 */
export class StatusModel extends PolledModel implements IDataOpsStatusModel {
  constructor(options: StatusModel.IOptions) {
    const seconds = Math.max(0, options.refreshInterval ?? 10);
    super({ name: 'jupyter-dataops:status', interval: seconds });
    this._client = options.client;
    this._refreshInterval = seconds;
  }

  get status(): IDataOpsStatus | null {
    return this._status;
  }

  get refreshInterval(): number {
    return this._refreshInterval;
  }

  set refreshInterval(seconds: number) {
    seconds = Number.isFinite(seconds) ? Math.max(0, seconds) : 0;
    if (seconds === this._refreshInterval) {
      return;
    }
    this._refreshInterval = seconds;
    if (seconds > 0) {
      this.poll.frequency = pollFrequency(seconds);
      if (this._polling) {
        void this.poll.start();
      }
    } else {
      void this.poll.stop();
    }
  }

  startPolling(): void {
    this._polling = true;
    if (this._refreshInterval > 0) {
      // Ticks at once, then every `refreshInterval` seconds.
      void this.poll.start();
    } else {
      void this.refresh();
    }
  }

  stopPolling(): void {
    this._polling = false;
    void this.poll.stop();
  }

  protected async load(): Promise<void> {
    this._status = await this._client.getStatus();
  }

  private _client: DataOpsClient;
  private _status: IDataOpsStatus | null = null;
  private _polling = false;
  private _refreshInterval: number;
}

export namespace StatusModel {
  export interface IOptions {
    /**
     * The API client.
     */
    client: DataOpsClient;

    /**
     * Seconds between two refreshes while polling; 0 turns polling off.
     */
    refreshInterval?: number;
  }
}

/**
 * The code that pulls a dataset into a notebook, e.g.
 * `df = dops.pull("flights")`.
 */
export function pullCode(name: string): string {
  // A JSON string is a valid Python string literal for any dataset name.
  return `df = dops.pull(${JSON.stringify(name)})`;
}

/**
 * The catalog as the sidebar shows it. Typing in the search box sets `query`
 * many times; the list is fetched once the typing pauses, and answers to
 * superseded requests are dropped.
 */
export class CatalogModel implements IDataOpsCatalogModel {
  constructor(options: CatalogModel.IOptions) {
    this._client = options.client;
    this._debouncer = new Debouncer(
      () => this.refresh(),
      options.searchDelay ?? 300
    );
  }

  get query(): string {
    return this._query;
  }

  set query(value: string) {
    if (value === this._query) {
      return;
    }
    this._query = value;
    this._changed.emit();
    this._debouncer.invoke().catch(() => undefined);
  }

  get tag(): string | null {
    return this._tag;
  }

  set tag(value: string | null) {
    if (value === this._tag) {
      return;
    }
    this._tag = value;
    this._changed.emit();
    void this._debouncer.stop();
    void this.refresh();
  }

  get datasets(): IDataOpsDatasetSummary[] | null {
    return this._datasets;
  }

  get tags(): string[] {
    const tags = new Set(this._tagPool);
    if (this._tag !== null) {
      tags.add(this._tag);
    }
    return [...tags].sort((a, b) => a.localeCompare(b));
  }

  get error(): string | null {
    return this._error;
  }

  get loading(): boolean {
    return this._loading;
  }

  get changed(): ISignal<IDataOpsCatalogModel, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  async refresh(): Promise<void> {
    const request = ++this._requests;
    const q = this._query.trim();
    const tag = this._tag;
    this._loading = true;
    this._changed.emit();
    try {
      const list = await this._client.listDatasets({
        q: q || undefined,
        tag: tag ?? undefined
      });
      if (request !== this._requests || this._isDisposed) {
        return;
      }
      this._datasets = list.datasets;
      if (tag === null) {
        this._tagPool = new Set<string>();
        for (const dataset of list.datasets) {
          dataset.tags.forEach(t => this._tagPool.add(t));
        }
      }
      this._error = null;
    } catch (reason) {
      if (request !== this._requests || this._isDisposed) {
        return;
      }
      this._error = errorMessage(reason);
    }
    this._loading = false;
    this._changed.emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._debouncer.dispose();
    Signal.clearData(this);
  }

  private _client: DataOpsClient;
  private _debouncer: Debouncer;
  private _query = '';
  private _tag: string | null = null;
  private _datasets: IDataOpsDatasetSummary[] | null = null;
  private _tagPool = new Set<string>();
  private _error: string | null = null;
  private _loading = false;
  private _requests = 0;
  private _isDisposed = false;
  private _changed = new Signal<IDataOpsCatalogModel, void>(this);
}

export namespace CatalogModel {
  export interface IOptions {
    /**
     * The API client.
     */
    client: DataOpsClient;

    /**
     * Milliseconds of quiet after the last change of `query` before the list
     * is fetched; 300 by default.
     */
    searchDelay?: number;
  }
}

/**
 * One dataset opened in the main area: its description and a preview of the
 * rows the current user may see, optionally narrowed by a `where` condition.
 */
export class DatasetModel implements IDisposable {
  constructor(options: DatasetModel.IOptions) {
    this._client = options.client;
    this.name = options.name;
    this.previewLimit = options.previewLimit ?? 20;
  }

  /**
   * The dataset's name in the catalog.
   */
  readonly name: string;

  /**
   * How many rows the preview asks for.
   */
  readonly previewLimit: number;

  /**
   * The dataset, or `null` before the first answer.
   */
  get detail(): IDataOpsDatasetDetail | null {
    return this._detail;
  }

  /**
   * Why the dataset could not be loaded, or `null`.
   */
  get error(): DatasetModel.IProblem | null {
    return this._error;
  }

  get loading(): boolean {
    return this._loading;
  }

  /**
   * The last preview received, or `null` (none yet, no access, or an error).
   */
  get preview(): IDataOpsPreview | null {
    return this._preview;
  }

  /**
   * Why the last preview failed, or `null`.
   */
  get previewError(): DatasetModel.IProblem | null {
    return this._previewError;
  }

  get previewLoading(): boolean {
    return this._previewLoading;
  }

  /**
   * The condition of the last preview requested (`''` for none).
   */
  get where(): string {
    return this._where;
  }

  /**
   * The code that pulls this dataset into a notebook.
   */
  get pullCode(): string {
    return pullCode(this.name);
  }

  get changed(): ISignal<DatasetModel, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Fetch the dataset, then its preview if the current user may read it (so
   * that merely opening a dataset does not log a denied read). Never rejects.
   */
  async load(): Promise<void> {
    const request = ++this._loads;
    this._loading = true;
    this._changed.emit();
    try {
      const detail = await this._client.getDataset(this.name);
      if (request !== this._loads || this._isDisposed) {
        return;
      }
      this._detail = detail;
      this._error = null;
    } catch (reason) {
      if (request !== this._loads || this._isDisposed) {
        return;
      }
      this._error = Private.problem(reason);
    }
    this._loading = false;
    this._changed.emit();
    if (this._detail?.access.allowed) {
      await this.runPreview(this._where);
    } else {
      this._preview = null;
      this._previewError = null;
      this._changed.emit();
    }
  }

  /**
   * Fetch the first rows matching `where` (all rows when empty). Never
   * rejects: a failure, e.g. an invalid condition, is kept in `previewError`.
   */
  async runPreview(where: string): Promise<void> {
    const request = ++this._previews;
    this._where = where.trim();
    this._previewLoading = true;
    this._changed.emit();
    try {
      const preview = await this._client.previewDataset(this.name, {
        limit: this.previewLimit,
        where: this._where || undefined
      });
      if (request !== this._previews || this._isDisposed) {
        return;
      }
      this._preview = preview;
      this._previewError = null;
    } catch (reason) {
      if (request !== this._previews || this._isDisposed) {
        return;
      }
      this._preview = null;
      this._previewError = Private.problem(reason);
    }
    this._previewLoading = false;
    this._changed.emit();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private _client: DataOpsClient;
  private _detail: IDataOpsDatasetDetail | null = null;
  private _error: DatasetModel.IProblem | null = null;
  private _loading = false;
  private _preview: IDataOpsPreview | null = null;
  private _previewError: DatasetModel.IProblem | null = null;
  private _previewLoading = false;
  private _where = '';
  private _loads = 0;
  private _previews = 0;
  private _isDisposed = false;
  private _changed = new Signal<DatasetModel, void>(this);
}

export namespace DatasetModel {
  export interface IOptions {
    /**
     * The API client.
     */
    client: DataOpsClient;

    /**
     * The dataset's name in the catalog.
     */
    name: string;

    /**
     * How many rows the preview asks for; 20 by default.
     */
    previewLimit?: number;
  }

  /**
   * A failed request: the server's message, error code and details (e.g. the
   * `line` and `column` of an invalid filter).
   */
  export interface IProblem {
    message: string;
    code: string | null;
    details: Record<string, unknown>;
  }
}

namespace Private {
  /**
   * A failed request as a problem to show, keeping the server's details.
   */
  export function problem(reason: unknown): DatasetModel.IProblem {
    if (reason instanceof DataOpsRequestError) {
      const details =
        reason.details && typeof reason.details === 'object'
          ? (reason.details as Record<string, unknown>)
          : {};
      return { message: reason.message, code: reason.code, details };
    }
    return { message: errorMessage(reason), code: null, details: {} };
  }
}
