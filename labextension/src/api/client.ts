import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IDataOpsDashboard,
  IDataOpsDashboardList,
  IDataOpsDashboardPatch,
  IDataOpsDashboardRequest,
  IDataOpsShareLink,
  IDataOpsDatasetDetail,
  IDataOpsExperimentList,
  IDataOpsJob,
  IDataOpsJobList,
  IDataOpsJobPatch,
  IDataOpsJobRequest,
  IDataOpsKernelTracking,
  IDataOpsMetricHistory,
  IDataOpsNotebookParameters,
  IDataOpsReproduction,
  IDataOpsRun,
  IDataOpsRunList,
  IDataOpsRunQuery,
  IDataOpsRunRequest,
  IDataOpsRunSearch,
  IDataOpsTrackedRunDetail,
  IDataOpsDatasetList,
  IDataOpsDatasetQuery,
  IDataOpsErrorBody,
  IDataOpsPreview,
  IDataOpsPreviewQuery,
  IDataOpsStatus,
  IDataOpsValidateRequest,
  IDataOpsValidateResponse
} from '../tokens';

/**
 * The base path of the DataOps REST API, relative to the server's base URL.
 */
export const API_BASE_PATH = 'dataops/api/v1/';

/**
 * An error answer of the DataOps API, carrying the server's message, code
 * and details (`{"error": {"code", "message", "details"}}`).
 */
export class DataOpsRequestError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly code: string | null = null,
    readonly details: unknown = null
  ) {
    super(response, message);
    this.name = 'DataOpsRequestError';
  }
}

/**
 * The client of the DataOps REST API: one method per endpoint.
 */
export class DataOpsClient {
  constructor(options: DataOpsClient.IOptions = {}) {
    this.serverSettings =
      options.serverSettings ?? ServerConnection.makeSettings();
  }

  /**
   * The server settings used for every request.
   */
  readonly serverSettings: ServerConnection.ISettings;

  /**
   * `GET status`: the version, the current user and their groups, the store,
   * the workspace policy file and the object counts.
   */
  getStatus(): Promise<IDataOpsStatus> {
    return this._request<IDataOpsStatus>('status');
  }

  /**
   * `POST workspace/validate`: check a candidate `dataops.yaml` text without
   * saving it; the answer lists the problems with file, line and field.
   */
  validateWorkspaceConfig(
    body: IDataOpsValidateRequest
  ): Promise<IDataOpsValidateResponse> {
    return this._post<IDataOpsValidateResponse>('workspace/validate', body);
  }

  /**
   * `GET datasets`: the catalog, searched by text (`q`) and limited to a tag,
   * with the current user's access to each dataset.
   */
  listDatasets(query: IDataOpsDatasetQuery = {}): Promise<IDataOpsDatasetList> {
    return this._request<IDataOpsDatasetList>('datasets', {}, query);
  }

  /**
   * `GET datasets/{name}`: a dataset's schema, versions (newest first), source
   * and the current user's access.
   */
  getDataset(name: string): Promise<IDataOpsDatasetDetail> {
    return this._request<IDataOpsDatasetDetail>(
      `datasets/${encodeURIComponent(name)}`
    );
  }

  /**
   * `GET datasets/{name}/preview`: the first rows the current user may see,
   * optionally narrowed by a SQL condition (`where`); masked values come as
   * the server masked them.
   */
  previewDataset(
    name: string,
    query: IDataOpsPreviewQuery = {}
  ): Promise<IDataOpsPreview> {
    return this._request<IDataOpsPreview>(
      `datasets/${encodeURIComponent(name)}/preview`,
      {},
      query
    );
  }

  /**
   * `GET runs`: the current user's runs (admins: all), newest first.
   */
  listRuns(query: IDataOpsRunQuery = {}): Promise<IDataOpsRunList> {
    return this._request<IDataOpsRunList>('runs', {}, query);
  }

  /**
   * `GET runs/{run_id}`: a run's state, progress, error and outputs.
   */
  getRun(id: string): Promise<IDataOpsRun> {
    return this._request<IDataOpsRun>(`runs/${encodeURIComponent(id)}`);
  }

  /**
   * `POST runs`: submit a run of a job definition or of a notebook. A bad
   * parameter is a 400 whose message names it.
   */
  submitRun(body: IDataOpsRunRequest): Promise<IDataOpsRun> {
    return this._post<IDataOpsRun>('runs', body);
  }

  /**
   * `POST runs/{run_id}/cancel`: cancel a queued or running run.
   */
  cancelRun(id: string): Promise<IDataOpsRun> {
    return this._post<IDataOpsRun>(`runs/${encodeURIComponent(id)}/cancel`);
  }

  /**
   * `POST runs/{run_id}/rerun`: run again with the same parameters.
   */
  rerunRun(id: string): Promise<IDataOpsRun> {
    return this._post<IDataOpsRun>(`runs/${encodeURIComponent(id)}/rerun`);
  }

  /**
   * `GET runs/{run_id}/outputs/{name}`: an output of a run as text (the
   * notebooks are JSON, the log plain text).
   */
  getRunOutput(
    id: string,
    name: 'notebook' | 'input' | 'log' | 'html'
  ): Promise<string> {
    return this._request<string>(
      `runs/${encodeURIComponent(id)}/outputs/${name}`,
      {},
      {},
      'text'
    );
  }

  /**
   * `GET runs/{run_id}/log`: follow a run's log (server-sent events). Calls
   * `onLine` for each line until the run ends; resolves with its final
   * status, or `null` when `signal` aborted the stream.
   */
  async followRunLog(
    id: string,
    onLine: (line: string) => void,
    signal?: AbortSignal
  ): Promise<string | null> {
    const response = await this._fetch(`runs/${encodeURIComponent(id)}/log`, {
      signal
    });
    if (!response.ok) {
      throw Private.toError(response, Private.parse(await response.text()));
    }
    const body = response.body;
    if (!body) {
      // No streaming in this browser: the whole answer at once.
      return Private.readEvents(await response.text(), onLine).end;
    }
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          return Private.readEvents(buffer + '\n\n', onLine).end;
        }
        buffer += decoder.decode(value, { stream: true });
        const read = Private.readEvents(buffer, onLine);
        buffer = read.rest;
        if (read.end !== null) {
          return read.end;
        }
      }
    } catch (error) {
      if (signal?.aborted) {
        return null;
      }
      throw error;
    } finally {
      reader.releaseLock();
    }
  }

  /**
   * `GET notebooks/parameters`: the parameters a notebook declares in its
   * `parameters` cell, with type, default and help.
   */
  getNotebookParameters(path: string): Promise<IDataOpsNotebookParameters> {
    return this._request<IDataOpsNotebookParameters>(
      'notebooks/parameters',
      {},
      { path }
    );
  }

  /**
   * `GET jobs`: the current user's job definitions (admins: all).
   */
  listJobs(): Promise<IDataOpsJobList> {
    return this._request<IDataOpsJobList>('jobs');
  }

  /**
   * `POST jobs`: create a job definition. A bad cron, time zone or parameter
   * is a 400, a name in use a 409.
   */
  createJob(body: IDataOpsJobRequest): Promise<IDataOpsJob> {
    return this._post<IDataOpsJob>('jobs', body);
  }

  /**
   * `DELETE jobs/{ref}`: delete a job definition; its runs stay.
   */
  async deleteJob(ref: string): Promise<void> {
    await this._request<unknown>(`jobs/${encodeURIComponent(ref)}`, {
      method: 'DELETE'
    });
  }

  /**
   * `PATCH jobs/{ref}`: change a job definition (e.g. `{paused: true}`).
   */
  updateJob(ref: string, patch: IDataOpsJobPatch): Promise<IDataOpsJob> {
    return this._request<IDataOpsJob>(`jobs/${encodeURIComponent(ref)}`, {
      method: 'PATCH',
      body: JSON.stringify(patch),
      headers: { 'Content-Type': 'application/json' }
    });
  }

  /**
   * `GET dashboards`: the dashboards the current user may see.
   */
  listDashboards(): Promise<IDataOpsDashboardList> {
    return this._request<IDataOpsDashboardList>('dashboards');
  }

  /**
   * `POST dashboards`: publish a notebook (it runs as a job now) or a job's
   * results; only the source's owner may.
   */
  publishDashboard(body: IDataOpsDashboardRequest): Promise<IDataOpsDashboard> {
    return this._post<IDataOpsDashboard>('dashboards', body);
  }

  /**
   * `PATCH dashboards/{slug}`: change its title, viewers, template or live view.
   */
  updateDashboard(
    slug: string,
    patch: IDataOpsDashboardPatch
  ): Promise<IDataOpsDashboard> {
    return this._request<IDataOpsDashboard>(
      `dashboards/${encodeURIComponent(slug)}`,
      {
        method: 'PATCH',
        body: JSON.stringify(patch),
        headers: { 'Content-Type': 'application/json' }
      }
    );
  }

  /**
   * `GET experiments`: the experiments with runs of the current user's
   * (admins: all), newest first.
   */
  listExperiments(): Promise<IDataOpsExperimentList> {
    return this._request<IDataOpsExperimentList>('experiments');
  }

  /**
   * `GET experiments/{id}/runs`: an experiment's runs, searched with MLflow's
   * syntax (`filter`, `order_by`); a bad filter is a 400 naming the position.
   */
  searchRuns(
    experiment: string,
    query: { filter?: string; order_by?: string } = {}
  ): Promise<IDataOpsRunSearch> {
    return this._request<IDataOpsRunSearch>(
      `experiments/${encodeURIComponent(experiment)}/runs`,
      {},
      query
    );
  }

  /**
   * `DELETE dashboards/{slug}`: unpublish; its job and runs stay.
   */
  async unpublishDashboard(slug: string): Promise<void> {
    await this._request<unknown>(`dashboards/${encodeURIComponent(slug)}`, {
      method: 'DELETE'
    });
  }

  /**
   * `POST dashboards/{slug}/shares`: a revocable, expiring link for someone
   * without an account; its URL carries the secret and is returned once.
   */
  createShareLink(
    slug: string,
    body: { label?: string; expires_in_s?: number } = {}
  ): Promise<IDataOpsShareLink> {
    return this._post<IDataOpsShareLink>(
      `dashboards/${encodeURIComponent(slug)}/shares`,
      body
    );
  }

  /**
   * `GET tracking/runs/{id}`: a tracked run with its datasets and artifacts.
   */
  getTrackedRun(id: string): Promise<IDataOpsTrackedRunDetail> {
    return this._request<IDataOpsTrackedRunDetail>(
      `tracking/runs/${encodeURIComponent(id)}`
    );
  }

  /**
   * `GET tracking/runs/{id}/metrics/{key}`: a metric's values over steps.
   */
  getMetricHistory(id: string, key: string): Promise<IDataOpsMetricHistory> {
    return this._request<IDataOpsMetricHistory>(
      `tracking/runs/${encodeURIComponent(id)}/metrics/${encodeURIComponent(key)}`
    );
  }

  /**
   * `POST tracking/runs/{id}/reproduce`: re-run a job run's snapshot with its
   * parameters; says which dataset versions it read have changed since.
   */
  reproduceRun(id: string): Promise<IDataOpsReproduction> {
    return this._post<IDataOpsReproduction>(
      `tracking/runs/${encodeURIComponent(id)}/reproduce`
    );
  }

  /**
   * `GET tracking/kernels/{id}`: whether a kernel is inside a tracked run.
   */
  getKernelTracking(kernelId: string): Promise<IDataOpsKernelTracking> {
    return this._request<IDataOpsKernelTracking>(
      `tracking/kernels/${encodeURIComponent(kernelId)}`
    );
  }

  /**
   * `GET openapi.json`: the OpenAPI document of this API.
   */
  getOpenAPIDocument(): Promise<Record<string, unknown>> {
    return this._request<Record<string, unknown>>('openapi.json');
  }

  private _post<T>(endpoint: string, body?: unknown): Promise<T> {
    return this._request<T>(endpoint, {
      method: 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' }
    });
  }

  private async _fetch(
    endpoint: string,
    init: RequestInit = {},
    query: Private.Query = {}
  ): Promise<Response> {
    // The query is added after the join, which would normalize it as a path.
    const url =
      URLExt.join(this.serverSettings.baseUrl, API_BASE_PATH, endpoint) +
      Private.queryString(query);
    try {
      return await ServerConnection.makeRequest(url, init, this.serverSettings);
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }
  }

  private async _request<T>(
    endpoint: string,
    init: RequestInit = {},
    query: Private.Query = {},
    as: 'json' | 'text' = 'json'
  ): Promise<T> {
    const response = await this._fetch(endpoint, init, query);
    const text = await response.text();
    if (!response.ok) {
      throw Private.toError(response, Private.parse(text));
    }
    return (as === 'text' ? text : Private.parse(text)) as T;
  }
}

export namespace DataOpsClient {
  export interface IOptions {
    /**
     * The server settings; defaults to `ServerConnection.makeSettings()`.
     */
    serverSettings?: ServerConnection.ISettings;
  }
}

namespace Private {
  /**
   * A JSON answer decoded; text that is not JSON as is; nothing as `null`.
   */
  export function parse(text: string): unknown {
    if (text.length === 0) {
      return null;
    }
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  /**
   * Read the complete server-sent events in `text`: each `data:` line of a
   * message goes to `onLine`; an `end` event gives the run's final status.
   * `rest` is the incomplete tail to keep for the next chunk.
   */
  export function readEvents(
    text: string,
    onLine: (line: string) => void
  ): { rest: string; end: string | null } {
    const messages = text.split(/\r?\n\r?\n/);
    const rest = messages.pop() ?? '';
    for (const message of messages) {
      let event = 'message';
      const data: string[] = [];
      for (const line of message.split(/\r?\n/)) {
        if (line.startsWith('event:')) {
          event = line.slice(6).trim();
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
      }
      if (event === 'end') {
        return { rest: '', end: data.join('\n') };
      }
      if (data.length > 0) {
        onLine(data.join('\n'));
      }
    }
    return { rest, end: null };
  }

  /**
   * `?a=1&b=2` for the defined, non-empty values of a query, or `''`.
   */
  export type Query = Record<
    string,
    string | number | boolean | null | undefined
  >;

  export function queryString(query: Query): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') {
        params.set(key, String(value));
      }
    }
    const text = params.toString();
    return text ? `?${text}` : '';
  }

  /**
   * Turn an error answer into an error carrying the server's own message.
   *
   * Our handlers answer `{"error": {...}}`; Jupyter Server itself (e.g. 403
   * before our handler runs) answers `{"message": ..., "reason": ...}`.
   */
  export function toError(
    response: Response,
    data: unknown
  ): DataOpsRequestError {
    if (isErrorBody(data)) {
      const { code, message, details } = data.error;
      return new DataOpsRequestError(response, message, code, details ?? null);
    }
    if (data && typeof data === 'object') {
      const { message, reason } = data as {
        message?: unknown;
        reason?: unknown;
      };
      const text = [message, reason].find(
        v => typeof v === 'string' && v.length > 0
      ) as string | undefined;
      if (text) {
        return new DataOpsRequestError(response, text);
      }
    }
    const fallback =
      `${response.status} ${response.statusText}`.trim() ||
      'Request to the DataOps server failed';
    return new DataOpsRequestError(response, fallback);
  }

  function isErrorBody(data: unknown): data is IDataOpsErrorBody {
    if (!data || typeof data !== 'object' || !('error' in data)) {
      return false;
    }
    const error = (data as { error: unknown }).error;
    return (
      !!error &&
      typeof error === 'object' &&
      typeof (error as { message?: unknown }).message === 'string'
    );
  }
}
