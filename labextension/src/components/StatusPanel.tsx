import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  IDataOpsConfigError,
  IDataOpsCounts,
  IDataOpsStatus,
  IDataOpsStatusModel
} from '../tokens';

export interface IStatusPanelProps {
  model: IDataOpsStatusModel;
  trans: TranslationBundle;
}

/**
 * The DataOps status: version, user, store, object counts and policy errors.
 */
export function StatusPanel(props: IStatusPanelProps): JSX.Element {
  const { model, trans } = props;
  const { status, error, loading } = model;

  return (
    <div
      className="jp-DataOps-status"
      data-test="dataops-status"
      aria-busy={loading}
    >
      {error !== null && (
        <div className="jp-DataOps-error" role="alert" data-test="dataops-error">
          {error}
        </div>
      )}
      {status === null
        ? error === null && (
            <p className="jp-DataOps-loading" data-test="dataops-loading">
              {trans.__('Loading…')}
            </p>
          )
        : <StatusDetails status={status} trans={trans} />}
    </div>
  );
}

function StatusDetails(props: {
  status: IDataOpsStatus;
  trans: TranslationBundle;
}): JSX.Element {
  const { status, trans } = props;
  const { user, store, workspace, counts } = status;
  const groups = user.groups ?? [];
  return (
    <>
      {workspace.config_error && (
        <ConfigErrorWarning
          error={workspace.config_error}
          lastValidInForce={workspace.config_loaded}
          trans={trans}
        />
      )}
      <dl className="jp-DataOps-facts">
        <dt>{trans.__('User')}</dt>
        <dd>
          <span data-test="dataops-user">{user.name}</span>
          {user.display_name && user.display_name !== user.name && (
            <span className="jp-DataOps-muted"> ({user.display_name})</span>
          )}
        </dd>
        <dt>{trans.__('Groups')}</dt>
        <dd data-test="dataops-groups">
          {groups.length > 0 ? (
            groups.map(group => (
              <span key={group} className="jp-DataOps-chip">
                {group}
              </span>
            ))
          ) : (
            <span className="jp-DataOps-muted">{trans.__('none')}</span>
          )}
        </dd>
        <dt>{trans.__('Store')}</dt>
        <dd>
          <code
            className="jp-DataOps-url"
            data-test="dataops-store-url"
            title={store.url}
          >
            {store.url}
          </code>
          <div className="jp-DataOps-muted">
            {store.revision
              ? trans.__('%1, schema revision %2', store.dialect, store.revision)
              : store.dialect}
          </div>
        </dd>
        <dt>{trans.__('Policy')}</dt>
        <dd>
          <code className="jp-DataOps-url" title={workspace.config_path}>
            {workspace.config_path}
          </code>
          <div className="jp-DataOps-muted" data-test="dataops-config-state">
            {workspace.config_error
              ? trans.__('invalid')
              : workspace.config_loaded
                ? trans.__('loaded')
                : trans.__('not found, defaults apply')}
          </div>
        </dd>
        <dt>{trans.__('Version')}</dt>
        <dd data-test="dataops-version">{status.version}</dd>
      </dl>
      <Counts counts={counts} trans={trans} />
    </>
  );
}

function ConfigErrorWarning(props: {
  error: IDataOpsConfigError;
  lastValidInForce: boolean;
  trans: TranslationBundle;
}): JSX.Element {
  const { error, lastValidInForce, trans } = props;
  return (
    <div
      className="jp-DataOps-warning"
      role="alert"
      data-test="dataops-config-error"
    >
      <div className="jp-DataOps-warning-title">
        {trans.__('Invalid workspace policy')}
      </div>
      <div
        className="jp-DataOps-warning-message"
        data-test="dataops-config-error-message"
      >
        {error.message}
      </div>
      <div className="jp-DataOps-warning-location">
        <code data-test="dataops-config-error-file">{error.file}</code>
        {error.line !== null && error.line !== undefined && (
          <>
            {', '}
            <span data-test="dataops-config-error-line">
              {trans.__('line %1', error.line)}
            </span>
          </>
        )}
        {error.field && (
          <>
            {', '}
            <span data-test="dataops-config-error-field">
              {trans.__('field %1', error.field)}
            </span>
          </>
        )}
      </div>
      {lastValidInForce && (
        <div className="jp-DataOps-muted">
          {trans.__('The last valid version stays in force.')}
        </div>
      )}
    </div>
  );
}

function Counts(props: {
  counts: IDataOpsCounts;
  trans: TranslationBundle;
}): JSX.Element {
  const { counts, trans } = props;
  const items: [keyof IDataOpsCounts, string][] = [
    ['datasets', trans.__('Datasets')],
    ['jobs', trans.__('Jobs')],
    ['runs', trans.__('Runs')],
    ['dashboards', trans.__('Dashboards')]
  ];
  return (
    <ul className="jp-DataOps-counts" aria-label={trans.__('Contents')}>
      {items.map(([key, label]) => (
        <li key={key} className="jp-DataOps-count">
          <span
            className="jp-DataOps-count-value"
            data-test={`dataops-count-${key}`}
          >
            {counts[key]}
          </span>
          <span className="jp-DataOps-count-label">{label}</span>
        </li>
      ))}
    </ul>
  );
}
