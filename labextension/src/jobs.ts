import { DataOpsClient } from './api/client';
import { PolledModel, pollFrequency } from './polled';
import { IDataOpsJob, IDataOpsRun, RunStatus } from './tokens';

/**
 * How often the runs are fetched while the Jobs tab is visible: quickly
 * while a run is queued or running, slowly otherwise.
 */
export const ACTIVE_POLL_S = 2;
export const IDLE_POLL_S = 15;

/**
 * How many runs the Jobs tab lists.
 */
export const RUN_LIMIT = 50;

/**
 * The states a run leaves by itself.
 */
const ACTIVE: ReadonlySet<string> = new Set<RunStatus>(['queued', 'running']);

/**
 * Whether a run is queued or running.
 */
export function isActive(run: IDataOpsRun): boolean {
  return ACTIVE.has(run.status);
}

/**
 * A run's progress as the executor records it (`RunInfo.progress` is typed
 * as a free-form object by the API).
 */
export interface IRunProgress {
  /** The code cell being executed, 1-based. */
  cell: number | null;
  /** How many code cells the notebook has. */
  of: number | null;
  /** The first line of the cell's source. */
  source: string | null;
  /** Seconds since the run started, when the cell started. */
  elapsed: number | null;
}

/**
 * Why a run failed (`RunInfo.error`, free-form in the API).
 */
export interface IRunError {
  reason: string | null;
  message: string;
  /**
   * The index of the failing cell in the submitted notebook (all cells,
   * 0-based; never papermill's numbering, which counts its injected cell).
   */
  cellIndex: number | null;
  /** The failing cell's id, when the notebook gives its cells ids. */
  cellId: string | null;
  source: string | null;
  /** The text of the cell's last output before it failed. */
  output: string | null;
  traceback: string | null;
}

export function runProgress(run: IDataOpsRun): IRunProgress {
  const p = run.progress;
  return {
    cell: Private.num(p['cell']),
    of: Private.num(p['of']),
    source: Private.str(p['source']),
    elapsed: Private.num(p['elapsed'])
  };
}

export function runError(run: IDataOpsRun): IRunError | null {
  const e = run.error;
  if (!e) {
    return null;
  }
  return {
    reason: Private.str(e['reason']),
    message: Private.str(e['message']) ?? Private.str(e['reason']) ?? '',
    cellIndex: Private.num(e['cell_index']),
    cellId: Private.str(e['cell_id']),
    source: Private.str(e['source']),
    output: Private.str(e['output']),
    traceback: Private.str(e['traceback'])
  };
}

/**
 * The runs and job definitions of the current user, as the Jobs tab shows
 * them. Polls while a view asks for it (`startPolling`), every 2 s while a
 * run is queued or running and every 15 s otherwise.
 */
export class JobsModel extends PolledModel {
  constructor(options: JobsModel.IOptions) {
    super({ name: 'jupyter-dataops:jobs', interval: IDLE_POLL_S });
    this.client = options.client;
  }

  /**
   * The client of the DataOps API the model fetches with.
   */
  readonly client: DataOpsClient;

  /**
   * The latest runs, newest first, or `null` before the first answer.
   */
  get runs(): IDataOpsRun[] | null {
    return this._runs;
  }

  /**
   * The job definitions, or `null` before the first answer.
   */
  get jobs(): IDataOpsJob[] | null {
    return this._jobs;
  }

  /**
   * Runs and jobs with an action under way (cancel, re-run, pause), so
   * their buttons wait.
   */
  isBusy(id: string): boolean {
    return this._busy.has(id);
  }

  startPolling(): void {
    void this.poll.start();
  }

  stopPolling(): void {
    void this.poll.stop();
  }

  /**
   * Show a run just submitted at the top of the list, then poll quickly.
   */
  add(run: IDataOpsRun): void {
    this._runs = [run, ...(this._runs ?? []).filter(r => r.id !== run.id)];
    this._schedule();
    this.emitChanged();
    // A new frequency applies from the next tick: tick now if polling.
    const phase = this.poll.state.phase;
    if (phase !== 'constructed' && phase !== 'stopped') {
      void this.poll.refresh();
    }
  }

  /**
   * Cancel a queued or running run. Rejects with the server's message.
   */
  cancel(id: string): Promise<IDataOpsRun> {
    return this._act(id, () => this.client.cancelRun(id));
  }

  /**
   * Run again with the same parameters; the new run comes first.
   */
  async rerun(id: string): Promise<IDataOpsRun> {
    const run = await this._act(id, () => this.client.rerunRun(id));
    this.add(run);
    return run;
  }

  /**
   * Show a job definition just created, then fetch the lists again.
   */
  addJob(job: IDataOpsJob): void {
    this._jobs = [...(this._jobs ?? []).filter(j => j.id !== job.id), job];
    this.emitChanged();
    void this.refresh();
  }

  /**
   * Run a job definition now, with its default parameters; the new run
   * comes first.
   */
  async runJob(job: IDataOpsJob): Promise<IDataOpsRun> {
    const run = await this._act(job.id, () =>
      this.client.submitRun({
        job: job.name,
        notebook_path: null,
        notebook: null,
        idempotency_key: null,
        kernel_name: null,
        output_formats: null,
        timeout_s: null
      })
    );
    this.add(run);
    return run;
  }

  /**
   * Delete a job definition; its runs stay.
   */
  async deleteJob(job: IDataOpsJob): Promise<void> {
    await this._act(job.id, () => this.client.deleteJob(job.name));
  }

  /**
   * Pause or resume the schedule of a job definition.
   */
  async setPaused(job: IDataOpsJob, paused: boolean): Promise<void> {
    await this._act(job.id, () => this.client.updateJob(job.name, { paused }));
  }

  protected async load(): Promise<void> {
    const [runs, jobs] = await Promise.all([
      this.client.listRuns({ limit: RUN_LIMIT }),
      this.client.listJobs()
    ]);
    this._runs = runs.runs;
    this._jobs = jobs.jobs;
    this._schedule();
  }

  private async _act<T>(id: string, action: () => Promise<T>): Promise<T> {
    this._busy.add(id);
    this.emitChanged();
    try {
      return await action();
    } finally {
      this._busy.delete(id);
      await this.refresh();
    }
  }

  /**
   * Poll quickly while something is queued or running.
   */
  private _schedule(): void {
    const seconds = (this._runs ?? []).some(isActive)
      ? ACTIVE_POLL_S
      : IDLE_POLL_S;
    const frequency = pollFrequency(seconds);
    if (this.poll.frequency.interval !== frequency.interval) {
      this.poll.frequency = frequency;
    }
  }

  private _runs: IDataOpsRun[] | null = null;
  private _jobs: IDataOpsJob[] | null = null;
  private _busy = new Set<string>();
}

export namespace JobsModel {
  export interface IOptions {
    client: DataOpsClient;
  }
}

namespace Private {
  export function num(value: unknown): number | null {
    return typeof value === 'number' && Number.isFinite(value) ? value : null;
  }

  export function str(value: unknown): string | null {
    return typeof value === 'string' ? value : null;
  }
}
