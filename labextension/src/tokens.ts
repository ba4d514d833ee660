import { Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal } from '@lumino/signaling';

import type { components, paths } from './api/schema';

/**
 * The types below come from the generated OpenAPI schema (src/api/schema.ts),
 * taken from the operations rather than from schema names, so that renaming a
 * pydantic model on the server does not break the front end. Paths are
 * relative to the API base, `dataops/api/v1`.
 */
type JSONBody<R> = R extends { content: { 'application/json': infer B } }
  ? B
  : never;
type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: { 200: infer R };
}
  ? JSONBody<R>
  : never;

/**
 * The body of `GET dataops/api/v1/status`.
 */
export type IDataOpsStatus = Ok<'/status', 'get'>;

/**
 * The user the server sees for the current token, with their groups.
 */
export type IDataOpsUser = IDataOpsStatus['user'];

/**
 * The metadata store; any password in the URL is already masked by the server.
 */
export type IDataOpsStore = IDataOpsStatus['store'];

/**
 * Object counts in the metadata store.
 */
export type IDataOpsCounts = IDataOpsStatus['counts'];

/**
 * The workspace and its `dataops.yaml`.
 */
export type IDataOpsWorkspace = IDataOpsStatus['workspace'];

/**
 * Why `dataops.yaml` could not be loaded.
 */
export type IDataOpsConfigError = NonNullable<
  IDataOpsWorkspace['config_error']
>;

/**
 * The body of `POST dataops/api/v1/workspace/validate`.
 */
export type IDataOpsValidateRequest =
  paths['/workspace/validate']['post']['requestBody']['content']['application/json'];

/**
 * The answer of `POST dataops/api/v1/workspace/validate`.
 */
export type IDataOpsValidateResponse = Ok<'/workspace/validate', 'post'>;

/**
 * The JSON body of every error answer of the DataOps REST API:
 * `{"error": {"code", "message", "details"}}`.
 */
export type IDataOpsErrorBody = components['schemas']['ErrorResponse'];

/**
 * The query of `GET dataops/api/v1/datasets`: free text and one tag.
 */
export type IDataOpsDatasetQuery = NonNullable<
  paths['/datasets']['get']['parameters']['query']
>;

/**
 * The body of `GET dataops/api/v1/datasets`.
 */
export type IDataOpsDatasetList = Ok<'/datasets', 'get'>;

/**
 * A catalog entry as listed, with what the current user may do with it.
 */
export type IDataOpsDatasetSummary = IDataOpsDatasetList['datasets'][number];

/**
 * The current user's access to a dataset: allowed or not and why, whether a
 * row filter applies and which columns are masked.
 */
export type IDataOpsAccess = IDataOpsDatasetSummary['access'];

/**
 * The body of `GET dataops/api/v1/datasets/{name}`.
 */
export type IDataOpsDatasetDetail = Ok<'/datasets/{name}', 'get'>;

/**
 * A column of a dataset, with its classification and whether the current
 * user sees it masked.
 */
export type IDataOpsColumn = IDataOpsDatasetDetail['columns'][number];

/**
 * An observed version of a dataset's data.
 */
export type IDataOpsVersion = IDataOpsDatasetDetail['versions'][number];

/**
 * The query of `GET dataops/api/v1/datasets/{name}/preview`.
 */
export type IDataOpsPreviewQuery = NonNullable<
  paths['/datasets/{name}/preview']['get']['parameters']['query']
>;

/**
 * The body of `GET dataops/api/v1/datasets/{name}/preview`: the first rows
 * the current user may see, masked as the policy says.
 */
export type IDataOpsPreview = Ok<'/datasets/{name}/preview', 'get'>;

/**
 * A run of a notebook: state, parameters, progress, error and outputs
 * (`GET dataops/api/v1/runs/{run_id}`).
 */
export type IDataOpsRun = Ok<'/runs/{run_id}', 'get'>;

/**
 * The body of `GET dataops/api/v1/runs`: runs, newest first.
 */
export type IDataOpsRunList = Ok<'/runs', 'get'>;

/**
 * The query of `GET dataops/api/v1/runs`.
 */
export type IDataOpsRunQuery = NonNullable<
  paths['/runs']['get']['parameters']['query']
>;

/**
 * The body of `POST dataops/api/v1/runs`: a job definition or a notebook,
 * with parameters.
 */
export type IDataOpsRunRequest =
  paths['/runs']['post']['requestBody']['content']['application/json'];

/**
 * A job definition: notebook, default parameters, cron schedule and limits.
 */
export type IDataOpsJob = Ok<'/jobs/{ref}', 'get'>;

/**
 * The body of `GET dataops/api/v1/jobs`.
 */
export type IDataOpsJobList = Ok<'/jobs', 'get'>;

/**
 * The body of `PATCH dataops/api/v1/jobs/{ref}`: the fields to change.
 */
export type IDataOpsJobPatch = Partial<
  paths['/jobs/{ref}']['patch']['requestBody']['content']['application/json']
>;

/**
 * The body of `POST dataops/api/v1/jobs`: a new job definition. Only the
 * name and the notebook are needed; the server defaults the rest.
 */
export type IDataOpsJobRequest = Partial<
  paths['/jobs']['post']['requestBody']['content']['application/json']
> &
  Pick<
    paths['/jobs']['post']['requestBody']['content']['application/json'],
    'name' | 'notebook_path'
  >;

/**
 * The body of `GET dataops/api/v1/notebooks/parameters`.
 */
export type IDataOpsNotebookParameters = Ok<'/notebooks/parameters', 'get'>;

/**
 * One parameter of a notebook: name, type, default and help.
 */
export type IDataOpsParameter = IDataOpsNotebookParameters['parameters'][number];

/**
 * A published dashboard: its source job, viewers, last render and stale state.
 */
export type IDataOpsDashboard = Ok<'/dashboards/{slug}', 'get'>;

/**
 * The body of `GET dataops/api/v1/dashboards`.
 */
export type IDataOpsDashboardList = Ok<'/dashboards', 'get'>;

/**
 * The body of `POST dataops/api/v1/dashboards`: a notebook or a job, and a slug.
 */
export type IDataOpsDashboardRequest = Partial<
  paths['/dashboards']['post']['requestBody']['content']['application/json']
> &
  Pick<
    paths['/dashboards']['post']['requestBody']['content']['application/json'],
    'slug'
  >;

/**
 * The body of `PATCH dataops/api/v1/dashboards/{slug}`.
 */
export type IDataOpsDashboardPatch = Partial<
  paths['/dashboards/{slug}']['patch']['requestBody']['content']['application/json']
>;

/**
 * A share link; its `url` (with the secret after `#`) only when just made.
 */
export type IDataOpsShareLink = Ok<'/dashboards/{slug}/shares/{link_id}', 'delete'>;

/**
 * The body of `GET dataops/api/v1/experiments`.
 */
export type IDataOpsExperimentList = Ok<'/experiments', 'get'>;

/**
 * An experiment with runs the current user may see.
 */
export type IDataOpsExperiment = IDataOpsExperimentList['experiments'][number];

/**
 * The body of `GET dataops/api/v1/experiments/{experiment_id}/runs`.
 */
export type IDataOpsRunSearch = Ok<'/experiments/{experiment_id}/runs', 'get'>;

/**
 * One tracked (MLflow) run: params, metrics, tags, status.
 */
export type IDataOpsTrackedRun = IDataOpsRunSearch['runs'][number];

/**
 * The body of `GET dataops/api/v1/tracking/runs/{mlflow_run_id}`.
 */
export type IDataOpsTrackedRunDetail = Ok<'/tracking/runs/{mlflow_run_id}', 'get'>;

/**
 * A dataset version a run read.
 */
export type IDataOpsDatasetRead = IDataOpsTrackedRunDetail['datasets'][number];

/**
 * The body of `GET dataops/api/v1/tracking/runs/{mlflow_run_id}/metrics/{key}`.
 */
export type IDataOpsMetricHistory = Ok<
  '/tracking/runs/{mlflow_run_id}/metrics/{key}',
  'get'
>;

/**
 * The answer of `POST dataops/api/v1/tracking/runs/{mlflow_run_id}/reproduce`.
 */
export type IDataOpsReproduction = Ok<
  '/tracking/runs/{mlflow_run_id}/reproduce',
  'post'
>;

/**
 * The body of `GET dataops/api/v1/tracking/kernels/{kernel_id}`.
 */
export type IDataOpsKernelTracking = Ok<'/tracking/kernels/{kernel_id}', 'get'>;

/**
 * The states of a run; `RunInfo.status` is typed as a plain string.
 */
export type RunStatus =
  | 'queued'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'cancelled'
  | 'timed_out';

/**
 * Command ids of the extension.
 */
export namespace CommandIDs {
  export const refreshStatus = 'jupyter-dataops:refresh-status';

  /**
   * Open a dataset of the catalog in the main area; args `{name}`.
   */
  export const openDataset = 'jupyter-dataops:open-dataset';

  /**
   * Copy the code that pulls a dataset into a notebook; args `{name}`.
   */
  export const copyPullCode = 'jupyter-dataops:copy-pull-code';

  /**
   * Run a notebook as a job, with parameters asked in a dialog; args
   * `{path}` (default: the current notebook or the file browser selection).
   */
  export const runNotebook = 'dataops:run-notebook';

  /**
   * Open the executed notebook of a run; args `{id}`.
   */
  export const openRunOutput = 'jupyter-dataops:open-run-output';

  /**
   * Show the log of a run in the main area, following it while it runs;
   * args `{id}`.
   */
  export const openRunLog = 'jupyter-dataops:open-run-log';

  /**
   * Publish a notebook as a dashboard, asking slug, title and viewers in a
   * dialog; args `{path}` (default: the current notebook or the selection).
   */
  export const publishDashboard = 'dataops:publish-dashboard';

  /**
   * The notebook toolbar's indicator: shown while the notebook's kernel is
   * inside a tracked run; opens it in the Experiments tab.
   */
  export const trackedRun = 'jupyter-dataops:tracked-run';
}

/**
 * The status of the DataOps extension, shared by the sidebar and by any
 * other plugin that wants to react to it.
 */
export interface IDataOpsStatusModel extends IDisposable {
  /**
   * The last status received, or `null` before the first answer.
   */
  readonly status: IDataOpsStatus | null;

  /**
   * The message of the last failed request, or `null` after a success.
   */
  readonly error: string | null;

  /**
   * Whether a request is under way.
   */
  readonly loading: boolean;

  /**
   * Seconds between two automatic refreshes while polling; 0 turns it off.
   */
  refreshInterval: number;

  /**
   * Emitted whenever `status`, `error` or `loading` changes.
   */
  readonly changed: ISignal<IDataOpsStatusModel, void>;

  /**
   * Fetch the status now. Never rejects: a failure is kept in `error`.
   */
  refresh(): Promise<void>;

  /**
   * Start refreshing periodically (e.g. when a view becomes visible).
   */
  startPolling(): void;

  /**
   * Stop refreshing periodically (e.g. when no view is visible).
   */
  stopPolling(): void;
}

/**
 * The token of the DataOps status model.
 */
export const IDataOpsStatusModel = new Token<IDataOpsStatusModel>(
  'jupyter-dataops:IDataOpsStatusModel',
  'The status of the DataOps server extension (user, store, workspace policy).'
);

/**
 * The catalog as the sidebar shows it: a search, a tag filter and the
 * matching datasets with the current user's access.
 */
export interface IDataOpsCatalogModel extends IDisposable {
  /**
   * The search text; setting it fetches the list again after a short pause.
   */
  query: string;

  /**
   * The tag the list is limited to, or `null`; setting it fetches at once.
   */
  tag: string | null;

  /**
   * The datasets matching `query` and `tag`, or `null` before the first answer.
   */
  readonly datasets: IDataOpsDatasetSummary[] | null;

  /**
   * The tags offered as filters: those of the datasets matching `query`,
   * plus the selected tag.
   */
  readonly tags: string[];

  /**
   * The message of the last failed request, or `null` after a success.
   */
  readonly error: string | null;

  /**
   * Whether a request is under way.
   */
  readonly loading: boolean;

  /**
   * Emitted whenever any of the above changes.
   */
  readonly changed: ISignal<IDataOpsCatalogModel, void>;

  /**
   * Fetch the list now. Never rejects: a failure is kept in `error`.
   */
  refresh(): Promise<void>;
}

/**
 * The token of the DataOps catalog model.
 */
export const IDataOpsCatalogModel = new Token<IDataOpsCatalogModel>(
  'jupyter-dataops:IDataOpsCatalogModel',
  'The DataOps data catalog as seen by the current user (search, tags, access).'
);
