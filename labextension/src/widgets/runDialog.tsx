import { Dialog } from '@jupyterlab/apputils';
import { KernelSpec } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { DataOpsClient, DataOpsRequestError } from '../api/client';
import { IDataOpsJob, IDataOpsParameter, IDataOpsRun } from '../tokens';
import { errorMessage } from '../utils';
import {
  defaultSchedule,
  IScheduleValues,
  jobRequest,
  ScheduleFields
} from './scheduleForm';

/**
 * The form of the "Run as Job" dialog: the notebook's parameters, inferred by
 * the server, as editable fields, the kernel to run in (the notebook's own
 * by default, as the server resolves it), and "Schedule…" to make a job
 * definition of them instead of running once. It submits the run (or
 * creates the definition) itself, so that a 400 (a bad value, a bad cron, a
 * kernel not installed) or a 409 (a name in use) is shown next to the fields
 * with the user's edits kept.
 */
export class RunForm extends ReactWidget {
  constructor(options: RunForm.IOptions) {
    super();
    this._client = options.client;
    this._trans = options.trans;
    this.path = options.path;
    this._schedule = defaultSchedule(options.path);
    this._kernelspecs = options.kernelspecs ?? null;
    this.addClass('jp-DataOps-runForm');
    void this._load();
    void this._loadKernels();
  }

  /**
   * The notebook to run, relative to the workspace root.
   */
  readonly path: string;

  /**
   * Emitted with the new mode when "Schedule…" is ticked or unticked.
   */
  get schedulingChanged(): ISignal<this, boolean> {
    return this._schedulingChanged;
  }

  /**
   * The run created, once submitted.
   */
  get run(): IDataOpsRun | null {
    return this._run;
  }

  /**
   * The job definition created, once submitted with "Schedule…".
   */
  get job(): IDataOpsJob | null {
    return this._job;
  }

  /**
   * Whether the form creates a job definition rather than a run.
   */
  get scheduling(): boolean {
    return this._scheduling;
  }

  set scheduling(value: boolean) {
    if (value !== this._scheduling) {
      this._scheduling = value;
      this._error = null;
      this.update();
      this._schedulingChanged.emit(value);
    }
  }

  get submitting(): boolean {
    return this._submitting;
  }

  /**
   * Whether the run or the job definition was created.
   */
  get done(): boolean {
    return this._run !== null || this._job !== null;
  }

  getValue(): RunForm.IResult | null {
    if (this._job !== null) {
      return { job: this._job, run: null };
    }
    return this._run !== null ? { job: null, run: this._run } : null;
  }

  /**
   * Submit the run, or with "Schedule…" create the job definition; true
   * when it was created. A failure is shown in the form.
   */
  async submit(): Promise<boolean> {
    if (this.done) {
      return true;
    }
    if (this._submitting) {
      return false;
    }
    this._submitting = true;
    this._error = null;
    this.update();
    try {
      if (this._scheduling) {
        this._job = await this._client.createJob({
          ...jobRequest(this.path, this._parameters(), this._schedule),
          kernel_name: this._kernelChoice()
        });
        return true;
      }
      this._run = await this._client.submitRun({
        notebook_path: this.path,
        notebook: null, // the server reads it (in team mode, the user's server sends it)
        parameters: this._parameters(),
        job: null,
        idempotency_key: null,
        kernel_name: this._kernelChoice(),
        output_formats: null,
        timeout_s: null
      });
      return true;
    } catch (reason) {
      const details =
        reason instanceof DataOpsRequestError &&
        reason.details &&
        typeof reason.details === 'object'
          ? (reason.details as Record<string, unknown>)
          : {};
      this._error = {
        message: errorMessage(reason),
        parameter:
          typeof details['parameter'] === 'string' ? details['parameter'] : null,
        field: Private.errorField(reason, details)
      };
      return false;
    } finally {
      this._submitting = false;
      this.update();
    }
  }

  render(): JSX.Element {
    const trans = this._trans;
    const params = this._declared;
    const error = this._error;
    return (
      <form
        className="jp-DataOps-runForm-body"
        data-test="dataops-run-form"
        aria-busy={this._submitting || params === null}
        onSubmit={event => event.preventDefault()}
      >
        <p className="jp-DataOps-runForm-path">
          <code data-test="dataops-run-form-path">{this.path}</code>
        </p>
        {error !== null && (
          <div
            className="jp-DataOps-error"
            role="alert"
            data-test="dataops-run-form-error"
            data-parameter={error.parameter ?? ''}
            data-field={error.field ?? ''}
          >
            {error.message}
          </div>
        )}
        {params === null && this._loadError === null && (
          <p className="jp-DataOps-loading">{trans.__('Reading parameters…')}</p>
        )}
        {this._loadError !== null && (
          <div className="jp-DataOps-warning" data-test="dataops-run-form-load-error">
            {trans.__('The parameters could not be read: %1', this._loadError)}
          </div>
        )}
        {params !== null && params.length === 0 && (
          <p className="jp-DataOps-muted" data-test="dataops-run-form-none">
            {trans.__(
              'This notebook has no cell tagged "parameters"; it runs as it is.'
            )}
          </p>
        )}
        {params !== null && params.length > 0 && (
          <table className="jp-DataOps-runForm-params">
            <tbody>
              {params.map(param => (
                <ParameterRow
                  key={param.name}
                  param={param}
                  value={this._values[param.name] ?? ''}
                  invalid={error?.parameter === param.name}
                  onChange={value => {
                    this._values[param.name] = value;
                    this.update();
                  }}
                  trans={trans}
                />
              ))}
            </tbody>
          </table>
        )}
        {this._renderKernel()}
        <label className="jp-DataOps-scheduleForm-toggle">
          <input
            type="checkbox"
            checked={this._scheduling}
            data-test="dataops-run-form-schedule"
            onChange={event => {
              this.scheduling = event.target.checked;
            }}
          />
          {trans.__('Schedule… (save as a job definition that runs on a cron)')}
        </label>
        {this._scheduling && (
          <ScheduleFields
            values={this._schedule}
            invalid={error?.field ?? null}
            onChange={values => {
              this._schedule = values;
              this.update();
            }}
            trans={trans}
          />
        )}
      </form>
    );
  }

  /**
   * The kernel picker: the installed kernels, the notebook's own first
   * selected; a warning when the notebook names a kernel not installed here.
   */
  private _renderKernel(): JSX.Element | null {
    const trans = this._trans;
    const specs = this._specs;
    if (this._declared === null || specs === null) {
      return null;
    }
    const names = Object.keys(specs.kernelspecs).sort();
    const missing = this._defaultKernel === null;
    const invalid = this._error?.field === 'kernel_name';
    return (
      <div className="jp-DataOps-runForm-kernel" data-test="dataops-run-form-kernel-row">
        <label htmlFor="jp-DataOps-run-kernel">{trans.__('Kernel')}</label>
        <select
          id="jp-DataOps-run-kernel"
          className={`jp-mod-styled jp-DataOps-runForm-input${invalid ? ' jp-DataOps-invalid' : ''}`}
          value={this._kernel}
          aria-invalid={invalid}
          data-test="dataops-run-form-kernel"
          onChange={event => {
            this._kernel = event.target.value;
            this.update();
          }}
        >
          {missing && <option value="">{trans.__('Pick a kernel…')}</option>}
          {names.map(name => (
            <option key={name} value={name}>
              {name === this._defaultKernel
                ? trans.__(
                    "%1 (the notebook's)",
                    specs.kernelspecs[name]?.display_name ?? name
                  )
                : (specs.kernelspecs[name]?.display_name ?? name)}
            </option>
          ))}
        </select>
        {missing && (
          <div
            className="jp-DataOps-warning"
            data-test="dataops-run-form-kernel-missing"
          >
            {this._notebookKernel
              ? trans.__(
                  'The notebook\'s kernel "%1" is not installed here: pick one to run it in.',
                  this._notebookKernel
                )
              : trans.__('Pick a kernel to run the notebook in.')}
          </div>
        )}
      </div>
    );
  }

  /**
   * The kernel to ask for: null keeps the notebook's own.
   */
  private _kernelChoice(): string | null {
    return this._kernel && this._kernel !== this._defaultKernel
      ? this._kernel
      : null;
  }

  private async _loadKernels(): Promise<void> {
    const manager = this._kernelspecs;
    if (manager === null) {
      return;
    }
    try {
      await manager.ready;
    } catch (reason) {
      console.error('The kernel specs could not be read.', reason);
      return;
    }
    this._specs = manager.specs;
    this.update();
  }

  private async _load(): Promise<void> {
    try {
      const answer = await this._client.getNotebookParameters(this.path);
      this._notebookKernel = answer.notebook_kernel ?? null;
      this._defaultKernel = answer.kernel_name ?? null;
      this._kernel = this._defaultKernel ?? '';
      this._declared = answer.parameters;
      for (const param of answer.parameters) {
        this._initial[param.name] = Private.toText(param);
        this._values[param.name] = this._initial[param.name];
      }
    } catch (reason) {
      this._loadError = errorMessage(reason);
    }
    this.update();
  }

  /**
   * The values the user changed, typed as declared. A value that does not
   * parse goes as text, so the server's 400 names the parameter.
   */
  private _parameters(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const param of this._declared ?? []) {
      const text = this._values[param.name] ?? '';
      if (text !== this._initial[param.name]) {
        out[param.name] = Private.fromText(param.type, text);
      }
    }
    return out;
  }

  private _client: DataOpsClient;
  private _trans: TranslationBundle;
  private _kernelspecs: KernelSpec.IManager | null;
  private _specs: KernelSpec.ISpecModels | null = null;
  private _notebookKernel: string | null = null;
  private _defaultKernel: string | null = null;
  private _kernel = '';
  private _declared: IDataOpsParameter[] | null = null;
  private _initial: Record<string, string> = {};
  private _values: Record<string, string> = {};
  private _loadError: string | null = null;
  private _error: {
    message: string;
    parameter: string | null;
    field: string | null;
  } | null = null;
  private _submitting = false;
  private _run: IDataOpsRun | null = null;
  private _job: IDataOpsJob | null = null;
  private _scheduling = false;
  private _schedule: IScheduleValues;
  private _schedulingChanged = new Signal<this, boolean>(this);
}

export namespace RunForm {
  export interface IOptions {
    client: DataOpsClient;
    path: string;
    trans: TranslationBundle;
    /**
     * The installed kernels to pick from (the service manager's).
     */
    kernelspecs?: KernelSpec.IManager;
  }

  /**
   * What the dialog made: a run, or a job definition.
   */
  export type IResult =
    | { run: IDataOpsRun; job: null }
    | { run: null; job: IDataOpsJob };
}

function ParameterRow(props: {
  param: IDataOpsParameter;
  value: string;
  invalid: boolean;
  onChange: (value: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { param, value, invalid, onChange, trans } = props;
  const id = `jp-DataOps-param-${param.name}`;
  // Not `jp-mod-error`: the dialog would disable its buttons.
  const className = `jp-mod-styled jp-DataOps-runForm-input${invalid ? ' jp-DataOps-invalid' : ''}`;
  return (
    <tr data-test="dataops-param" data-name={param.name} data-type={param.type}>
      <th scope="row">
        <label htmlFor={id}>
          <code>{param.name}</code>
        </label>
        <span className="jp-DataOps-chip jp-DataOps-runForm-type">
          {param.type}
        </span>
      </th>
      <td>
        {param.type === 'bool' ? (
          <select
            id={id}
            className={className}
            value={value}
            aria-invalid={invalid}
            data-test="dataops-param-input"
            onChange={event => onChange(event.target.value)}
          >
            <option value="True">True</option>
            <option value="False">False</option>
          </select>
        ) : (
          <input
            id={id}
            className={className}
            type="text"
            value={value}
            spellCheck={false}
            aria-invalid={invalid}
            placeholder={
              param.default === null ? trans.__('default (an expression)') : ''
            }
            data-test="dataops-param-input"
            onChange={event => onChange(event.target.value)}
          />
        )}
        {param.help && (
          <div className="jp-DataOps-muted jp-DataOps-runForm-help">
            {param.help}
          </div>
        )}
      </td>
    </tr>
  );
}

/**
 * The "Run as Job" dialog: "Run" (or "Schedule", with "Schedule…" ticked)
 * submits the form and closes the dialog only when the run or the job
 * definition was created.
 */
export class RunNotebookDialog extends Dialog<RunForm.IResult | null> {
  constructor(form: RunForm, trans: TranslationBundle) {
    const buttons = [
      Dialog.cancelButton({ label: trans.__('Cancel') }),
      Dialog.okButton({ label: trans.__('Run') })
    ];
    super({
      title: trans.__('Run as Job'),
      body: form,
      buttons,
      defaultButton: 1,
      focusNodeSelector: 'input, select'
    });
    this._form = form;
    this._runButtons = buttons;
    this.addClass('jp-DataOps-runDialog');
    form.schedulingChanged.connect((_, scheduling) => {
      const label = this.node.querySelector(
        '.jp-Dialog-button.jp-mod-accept .jp-Dialog-buttonLabel'
      );
      if (label) {
        label.textContent = scheduling
          ? trans.__('Schedule')
          : trans.__('Run');
      }
    }, this);
  }

  resolve(index?: number): void {
    const button = this._runButtons[index ?? 1];
    if (!button?.accept || this._form.done) {
      super.resolve(index);
      return;
    }
    if (this._form.submitting) {
      return;
    }
    void this._form.submit().then(created => {
      if (created && !this.isDisposed) {
        super.resolve(index);
      }
    });
  }

  private _form: RunForm;
  private _runButtons: Dialog.IButton[];
}

namespace Private {
  /**
   * The field a failed request names: `details.field`, the first of a
   * validation's `details.errors`, or the job name on a 409 (in use).
   */
  export function errorField(
    reason: unknown,
    details: Record<string, unknown>
  ): string | null {
    if (typeof details['field'] === 'string') {
      return details['field'];
    }
    const errors = details['errors'];
    if (Array.isArray(errors) && errors.length > 0) {
      const field = (errors[0] as { field?: unknown } | null)?.field;
      if (typeof field === 'string') {
        return field;
      }
    }
    if (
      reason instanceof DataOpsRequestError &&
      reason.response.status === 409
    ) {
      return 'name';
    }
    return null;
  }

  /**
   * The text a field starts with: the default as the user would type it.
   */
  export function toText(param: IDataOpsParameter): string {
    const value = param.default;
    if (param.type === 'bool') {
      return value === false ? 'False' : 'True';
    }
    if (value === null || value === undefined) {
      return '';
    }
    if (typeof value === 'string' && param.type !== 'any') {
      return value;
    }
    return JSON.stringify(value);
  }

  export function fromText(type: string, text: string): unknown {
    const trimmed = text.trim();
    switch (type) {
      case 'str':
        return text;
      case 'bool':
        return trimmed === 'True';
      case 'int':
        return /^[+-]?\d+$/.test(trimmed) ? parseInt(trimmed, 10) : text;
      case 'float': {
        const number = Number(trimmed);
        return trimmed !== '' && Number.isFinite(number) ? number : text;
      }
      default:
        try {
          return JSON.parse(trimmed);
        } catch {
          return text;
        }
    }
  }
}
