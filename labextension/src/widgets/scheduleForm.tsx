import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IDataOpsJobRequest } from '../tokens';

/**
 * What the "Schedule" section of the "Run as Job" dialog holds, as typed.
 */
export interface IScheduleValues {
  name: string;
  schedule: string;
  timezone: string;
  retries: string;
  timeout: string;
  html: boolean;
  pdf: boolean;
}

/**
 * The first values of the section for a notebook: its file name as the job
 * name, weekdays at 06:00, the browser's time zone.
 */
export function defaultSchedule(path: string): IScheduleValues {
  return {
    name: jobNameFor(path),
    schedule: '0 6 * * 1-5',
    timezone: browserTimeZone(),
    retries: '0',
    timeout: '',
    html: false,
    pdf: false
  };
}

/**
 * A job name from a notebook's file name, within the pattern the server
 * accepts: `^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`.
 */
export function jobNameFor(path: string): string {
  const stem = PathExt.basename(path, PathExt.extname(path));
  let name = stem.replace(/[^A-Za-z0-9_.-]+/g, '_');
  if (!/^[A-Za-z_]/.test(name)) {
    name = `_${name}`;
  }
  return name.slice(0, 128);
}

export function browserTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/**
 * The body of `POST jobs` for a notebook, its edited parameters and the
 * section's values. A number that does not parse goes as text, so that the
 * server's 400 names the field.
 */
export function jobRequest(
  path: string,
  parameters: Record<string, unknown>,
  values: IScheduleValues
): IDataOpsJobRequest {
  const formats: string[] = [];
  if (values.html) {
    formats.push('html');
  }
  if (values.pdf) {
    formats.push('pdf');
  }
  return {
    name: values.name.trim(),
    notebook_path: path,
    parameters,
    schedule: values.schedule.trim() || null,
    timezone: values.timezone.trim() || 'UTC',
    max_retries: Private.number(values.retries, 0) as number,
    timeout_s: Private.number(values.timeout, null) as number | null,
    output_formats: formats
  };
}

/**
 * The fields of a job definition: name, cron, time zone, retries, timeout
 * and the extra output formats. `invalid` is the field the server named.
 */
export function ScheduleFields(props: {
  values: IScheduleValues;
  invalid: string | null;
  onChange: (values: IScheduleValues) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { values, invalid, onChange, trans } = props;
  const set = (change: Partial<IScheduleValues>) =>
    onChange({ ...values, ...change });
  const input = (
    key: 'name' | 'schedule' | 'timezone' | 'retries' | 'timeout',
    field: string,
    extra: React.InputHTMLAttributes<HTMLInputElement> = {}
  ) => (
    <input
      id={`jp-DataOps-job-${key}`}
      className={`jp-mod-styled jp-DataOps-runForm-input${invalid === field ? ' jp-DataOps-invalid' : ''}`}
      type="text"
      value={values[key]}
      spellCheck={false}
      aria-invalid={invalid === field}
      data-test={`dataops-job-form-${key}`}
      onChange={event => set({ [key]: event.target.value })}
      {...extra}
    />
  );
  return (
    <table
      className="jp-DataOps-runForm-params jp-DataOps-scheduleForm"
      data-test="dataops-job-form"
    >
      <tbody>
        <FieldRow field="name" label={trans.__('Job name')}>
          {input('name', 'name')}
        </FieldRow>
        <FieldRow field="schedule" label={trans.__('Cron')}>
          {input('schedule', 'schedule', { placeholder: '0 6 * * 1-5' })}
          <div className="jp-DataOps-muted jp-DataOps-runForm-help">
            {trans.__(
              'minute hour day-of-month month day-of-week: "0 6 * * 1-5" = 06:00 on weekdays'
            )}
          </div>
        </FieldRow>
        <FieldRow field="timezone" label={trans.__('Time zone')}>
          {input('timezone', 'timezone', {
            list: 'jp-DataOps-timezones',
            placeholder: 'UTC'
          })}
          <datalist id="jp-DataOps-timezones">
            {Private.timeZones().map(zone => (
              <option key={zone} value={zone} />
            ))}
          </datalist>
        </FieldRow>
        <FieldRow field="retries" label={trans.__('Retries')}>
          {input('retries', 'max_retries', { inputMode: 'numeric' })}
        </FieldRow>
        <FieldRow field="timeout" label={trans.__('Timeout (s)')}>
          {input('timeout', 'timeout_s', {
            inputMode: 'numeric',
            placeholder: trans.__('none')
          })}
        </FieldRow>
        <tr>
          <th scope="row">{trans.__('Also save')}</th>
          <td
            className={
              invalid === 'output_formats' ? 'jp-DataOps-invalid' : undefined
            }
          >
            {(['html', 'pdf'] as const).map(format => (
              <label key={format} className="jp-DataOps-scheduleForm-format">
                <input
                  type="checkbox"
                  checked={values[format]}
                  data-test={`dataops-job-form-${format}`}
                  onChange={event => set({ [format]: event.target.checked })}
                />
                {format.toUpperCase()}
              </label>
            ))}
          </td>
        </tr>
      </tbody>
    </table>
  );
}

function FieldRow(props: {
  field: string;
  label: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <tr>
      <th scope="row">
        <label htmlFor={`jp-DataOps-job-${props.field}`}>{props.label}</label>
      </th>
      <td>{props.children}</td>
    </tr>
  );
}

namespace Private {
  export function number(text: string, empty: number | null): unknown {
    const trimmed = text.trim();
    if (trimmed === '') {
      return empty;
    }
    return /^\d+$/.test(trimmed) ? parseInt(trimmed, 10) : trimmed;
  }

  let zones: string[] | null = null;

  /**
   * The IANA time zones the browser knows, for the field's suggestions.
   */
  export function timeZones(): string[] {
    if (zones === null) {
      const intl = Intl as { supportedValuesOf?: (key: string) => string[] };
      try {
        zones = intl.supportedValuesOf?.('timeZone') ?? [];
      } catch {
        zones = [];
      }
    }
    return zones;
  }
}
