import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  IDataOpsDatasetDetail,
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
    return this._request<IDataOpsValidateResponse>('workspace/validate', {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'Content-Type': 'application/json' }
    });
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
   * `GET openapi.json`: the OpenAPI document of this API.
   */
  getOpenAPIDocument(): Promise<Record<string, unknown>> {
    return this._request<Record<string, unknown>>('openapi.json');
  }

  private async _request<T>(
    endpoint: string,
    init: RequestInit = {},
    query: Private.Query = {}
  ): Promise<T> {
    // The query is added after the join, which would normalize it as a path.
    const url =
      URLExt.join(this.serverSettings.baseUrl, API_BASE_PATH, endpoint) +
      Private.queryString(query);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        url,
        init,
        this.serverSettings
      );
    } catch (error) {
      throw new ServerConnection.NetworkError(error as TypeError);
    }

    const text = await response.text();
    let data: unknown = null;
    if (text.length > 0) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!response.ok) {
      throw Private.toError(response, data);
    }
    return data as T;
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
