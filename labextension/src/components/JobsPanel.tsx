import { Time } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { isActive, JobsModel, runError, runProgress } from '../jobs';
import { IDataOpsJob, IDataOpsRun } from '../tokens';
import { errorMessage, formatRelative, utc } from '../utils';

export interface IJobsPanelProps {
  model: JobsModel;
  /**
   * Open the executed notebook of a run.
   */
  onOpenOutput: (run: IDataOpsRun) => void;
  /**
   * Show the log of a run.
   */
  onOpenLog: (run: IDataOpsRun) => void;
  /**
   * Run the current notebook as a job (opens the parameters dialog).
   */
  onRunNotebook: () => void;
  /**
   * Ask whether to delete a job definition.
   */
  confirmDeleteJob: (job: IDataOpsJob) => Promise<boolean>;
  /**
   * Report a failed action (cancel, re-run, pause, run now, delete).
   */
  onError: (message: string) => void;
  trans: TranslationBundle;
}

/**
 * The Jobs tab: the current user's recent runs, newest first, with their
 * state and actions, then the job definitions and their schedules.
 */
export function JobsPanel(props: IJobsPanelProps): JSX.Element {
  const { model, trans } = props;
  const { runs, jobs, error, loading } = model;
  return (
    <div className="jp-DataOps-jobs" data-test="dataops-jobs" aria-busy={loading}>
      <div className="jp-DataOps-jobs-toolbar">
        <button
          type="button"
          className="jp-DataOps-button"
          data-test="dataops-run-notebook"
          title={trans.__(
            'Run the current notebook as a job, with parameters'
          )}
          onClick={props.onRunNotebook}
        >
          {trans.__('Run notebook…')}
        </button>
      </div>
      {error !== null && (
        <div
          className="jp-DataOps-error"
          role="alert"
          data-test="dataops-jobs-error"
        >
          {error}
        </div>
      )}
      <section aria-labelledby="jp-DataOps-runs-title">
        <h3 className="jp-DataOps-subtitle" id="jp-DataOps-runs-title">
          {trans.__('Recent runs')}
        </h3>
        {runs === null ? (
          error === null && (
            <p className="jp-DataOps-loading">{trans.__('Loading…')}</p>
          )
        ) : runs.length === 0 ? (
          <p className="jp-DataOps-muted" data-test="dataops-runs-empty">
            {trans.__(
              'No runs yet. Open a notebook and use "Run as Job" to run it with parameters.'
            )}
          </p>
        ) : (
          <ul className="jp-DataOps-runs" data-test="dataops-run-list">
            {runs.map(run => (
              <RunItem key={run.id} run={run} {...props} />
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="jp-DataOps-defs-title">
        <h3 className="jp-DataOps-subtitle" id="jp-DataOps-defs-title">
          {trans.__('Job definitions')}
        </h3>
        {jobs !== null && jobs.length === 0 && (
          <p className="jp-DataOps-muted" data-test="dataops-jobs-empty">
            {trans.__(
              'No job definitions. Use "Run as Job" and tick "Schedule…" to make one of a notebook.'
            )}
          </p>
        )}
        {jobs !== null && jobs.length > 0 && (
          <ul className="jp-DataOps-runs" data-test="dataops-job-list">
            {jobs.map(job => (
              <JobItem
                key={job.id}
                job={job}
                lastRun={(runs ?? []).find(r => r.job_id === job.id) ?? null}
                {...props}
              />
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

/**
 * The state of a run as a coloured badge.
 */
export function RunStatusBadge(props: {
  status: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { status, trans } = props;
  const labels: Record<string, string> = {
    queued: trans.__('queued'),
    running: trans.__('running'),
    succeeded: trans.__('succeeded'),
    failed: trans.__('failed'),
    cancelled: trans.__('cancelled'),
    timed_out: trans.__('timed out')
  };
  return (
    <span
      className={`jp-DataOps-badge jp-DataOps-runStatus jp-mod-${status}`}
      data-test="dataops-run-status"
      data-status={status}
    >
      {labels[status] ?? status}
    </span>
  );
}

function RunItem(props: IJobsPanelProps & { run: IDataOpsRun }): JSX.Element {
  const { run, model, trans, onError } = props;
  const active = isActive(run);
  const busy = model.isBusy(run.id);
  const params = Object.entries(run.parameters);
  const error = runError(run);
  const created = utc(run.created_at);
  const act = reporting(onError);
  return (
    <li
      className="jp-DataOps-run"
      data-test="dataops-run"
      data-id={run.id}
      data-status={run.status}
    >
      <div className="jp-DataOps-run-head">
        <span
          className="jp-DataOps-run-notebook"
          data-test="dataops-run-notebook"
          title={run.notebook_path}
        >
          {run.notebook_path}
        </span>
        <RunStatusBadge status={run.status} trans={trans} />
      </div>
      <div className="jp-DataOps-run-meta">
        {run.job_name && (
          <span className="jp-DataOps-chip" data-test="dataops-run-job">
            {run.job_name}
          </span>
        )}
        <time dateTime={created} title={Time.format(created)}>
          {Time.formatHuman(created)}
        </time>
        {run.trigger !== 'user' && run.trigger !== 'api' && (
          <span className="jp-DataOps-muted">{` · ${run.trigger}`}</span>
        )}
      </div>
      {params.length > 0 && (
        <div
          className="jp-DataOps-run-params"
          data-test="dataops-run-params"
          title={params.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}
        >
          {params.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}
        </div>
      )}
      <RunTiming run={run} trans={trans} />
      {error !== null && (
        <div
          className="jp-DataOps-error jp-DataOps-run-error"
          data-test="dataops-run-error"
          title={error.traceback ?? undefined}
        >
          {error.cellIndex !== null && (
            <div
              data-test="dataops-run-error-cell"
              data-cell-index={error.cellIndex}
              data-cell-id={error.cellId ?? ''}
            >
              <strong>{trans.__('In cell %1', error.cellIndex + 1)}</strong>
              {error.cellId && (
                <span className="jp-DataOps-muted" data-test="dataops-run-error-cell-id">
                  {` · ${trans.__('id %1', error.cellId)}`}
                </span>
              )}
              {error.source && (
                <pre
                  className="jp-DataOps-run-source"
                  data-test="dataops-run-error-source"
                >
                  {Private.lines(error.source, SOURCE_LINES)}
                </pre>
              )}
            </div>
          )}
          <div data-test="dataops-run-error-message">{error.message}</div>
          {error.output && (
            <div data-test="dataops-run-error-output">
              <span className="jp-DataOps-muted">{trans.__('Last output')}</span>
              <pre className="jp-DataOps-run-output">
                {Private.lines(error.output, OUTPUT_LINES, true)}
              </pre>
            </div>
          )}
        </div>
      )}
      <div className="jp-DataOps-run-actions">
        {active && (
          <ActionButton
            data-test="dataops-run-cancel"
            disabled={busy}
            onClick={() => act(() => model.cancel(run.id))}
          >
            {trans.__('Cancel')}
          </ActionButton>
        )}
        {!active && (
          <ActionButton
            data-test="dataops-run-rerun"
            disabled={busy}
            title={trans.__('Run again with the same parameters')}
            onClick={() => act(() => model.rerun(run.id))}
          >
            {trans.__('Re-run')}
          </ActionButton>
        )}
        {run.outputs.includes('notebook') && (
          <ActionButton
            data-test="dataops-run-open-output"
            title={trans.__(
              'Open the executed notebook (a copy under dataops-outputs/)'
            )}
            onClick={() => props.onOpenOutput(run)}
          >
            {trans.__('Open output')}
          </ActionButton>
        )}
        <ActionButton
          data-test="dataops-run-log"
          onClick={() => props.onOpenLog(run)}
        >
          {trans.__('View log')}
        </ActionButton>
      </div>
    </li>
  );
}

/**
 * "cell 2 of 5 · 3 s" while running; "took 4.2 s" when done.
 */
function RunTiming(props: {
  run: IDataOpsRun;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { run, trans } = props;
  if (run.status === 'queued') {
    return null;
  }
  const progress = runProgress(run);
  if (run.status === 'running') {
    const elapsed = run.started_at
      ? Math.max(0, (Date.now() - Date.parse(utc(run.started_at))) / 1000)
      : progress.elapsed;
    return (
      <div
        className="jp-DataOps-run-progress"
        data-test="dataops-run-progress"
        title={progress.source ?? undefined}
      >
        {progress.cell !== null && progress.of !== null
          ? trans.__('cell %1 of %2', progress.cell, progress.of)
          : trans.__('starting')}
        {elapsed !== null && ` · ${formatDuration(elapsed)}`}
      </div>
    );
  }
  if (!run.started_at || !run.finished_at) {
    return null;
  }
  const seconds =
    (Date.parse(utc(run.finished_at)) - Date.parse(utc(run.started_at))) / 1000;
  return (
    <div className="jp-DataOps-muted" data-test="dataops-run-duration">
      {trans.__('took %1', formatDuration(seconds))}
    </div>
  );
}

function JobItem(
  props: IJobsPanelProps & { job: IDataOpsJob; lastRun: IDataOpsRun | null }
): JSX.Element {
  const { job, lastRun, model, trans, onError } = props;
  const busy = model.isBusy(job.id);
  const act = reporting(onError);
  return (
    <li
      className="jp-DataOps-run"
      data-test="dataops-job"
      data-name={job.name}
      data-paused={String(job.paused)}
    >
      <div className="jp-DataOps-run-head">
        <span className="jp-DataOps-run-notebook" title={job.notebook_path}>
          {job.name}
        </span>
        {job.paused && (
          <span
            className="jp-DataOps-badge jp-DataOps-runStatus jp-mod-cancelled"
            data-test="dataops-job-paused"
          >
            {trans.__('paused')}
          </span>
        )}
      </div>
      <div className="jp-DataOps-run-meta">
        <span className="jp-DataOps-muted">{job.notebook_path}</span>
      </div>
      <div className="jp-DataOps-run-meta" data-test="dataops-job-schedule">
        {job.schedule ? (
          <>
            <code>{job.schedule}</code>
            <span className="jp-DataOps-muted">{job.timezone}</span>
            {job.next_fire_at && (
              <time
                className="jp-DataOps-muted"
                data-test="dataops-job-next"
                dateTime={utc(job.next_fire_at)}
                title={new Date(utc(job.next_fire_at)).toLocaleString()}
              >
                {trans.__(
                  'next %1 (%2)',
                  Time.format(utc(job.next_fire_at)),
                  formatRelative(utc(job.next_fire_at))
                )}
              </time>
            )}
          </>
        ) : (
          <span className="jp-DataOps-muted">{trans.__('no schedule')}</span>
        )}
      </div>
      {lastRun !== null && (
        <div className="jp-DataOps-run-meta" data-test="dataops-job-last-run">
          <span className="jp-DataOps-muted">{trans.__('last run')}</span>
          <RunStatusBadge status={lastRun.status} trans={trans} />
          <span className="jp-DataOps-muted">
            {Time.formatHuman(utc(lastRun.created_at))}
          </span>
        </div>
      )}
      <div className="jp-DataOps-run-actions">
        <ActionButton
          data-test="dataops-job-run"
          disabled={busy}
          title={trans.__('Run the job now, with its parameters')}
          onClick={() => act(() => model.runJob(job))}
        >
          {trans.__('Run now')}
        </ActionButton>
        {job.schedule && (
          <ActionButton
            data-test="dataops-job-pause"
            disabled={busy}
            onClick={() => act(() => model.setPaused(job, !job.paused))}
          >
            {job.paused ? trans.__('Resume') : trans.__('Pause')}
          </ActionButton>
        )}
        <ActionButton
          data-test="dataops-job-delete"
          disabled={busy}
          title={trans.__('Delete the definition; its runs stay')}
          onClick={() =>
            act(async () => {
              if (await props.confirmDeleteJob(job)) {
                await model.deleteJob(job);
              }
            })
          }
        >
          {trans.__('Delete')}
        </ActionButton>
      </div>
    </li>
  );
}

/**
 * A small button of a run's or a job's actions.
 */
function ActionButton(
  props: React.ButtonHTMLAttributes<HTMLButtonElement> & {
    'data-test': string;
  }
): JSX.Element {
  return <button type="button" className="jp-DataOps-action" {...props} />;
}

/**
 * Start an action of a button, reporting its failure.
 */
function reporting(
  onError: (message: string) => void
): (action: () => Promise<unknown>) => void {
  return action => {
    action().catch(reason => onError(errorMessage(reason)));
  };
}

/**
 * How much of a failing cell's source and last output the Jobs tab shows
 * (the first lines of the source, the last of the output).
 */
const SOURCE_LINES = 6;
const OUTPUT_LINES = 4;

namespace Private {
  export function lines(text: string, n: number, last = false): string {
    const all = text.replace(/\s+$/, '').split('\n');
    if (all.length <= n) {
      return all.join('\n');
    }
    return last
      ? ['…', ...all.slice(-n)].join('\n')
      : [...all.slice(0, n), '…'].join('\n');
  }
}

/**
 * `4.2 s`, `1 min 5 s`, `2 h 3 min`.
 */
export function formatDuration(seconds: number): string {
  if (seconds < 10) {
    return `${Math.max(0, seconds).toFixed(1)} s`;
  }
  const s = Math.round(seconds);
  if (s < 60) {
    return `${s} s`;
  }
  if (s < 3600) {
    return `${Math.floor(s / 60)} min ${s % 60} s`;
  }
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
