import { Time } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { DatasetModel } from '../model';
import {
  IDataOpsColumn,
  IDataOpsDatasetDetail,
  IDataOpsPreview
} from '../tokens';
import { utc } from '../utils';
import { AccessBadge } from './AccessBadge';

export interface IDatasetPanelProps {
  model: DatasetModel;
  trans: TranslationBundle;
}

/**
 * A dataset of the catalog: what it is, its schema, the current user's
 * access and a preview of the rows they may see.
 */
export function DatasetPanel(props: IDatasetPanelProps): JSX.Element {
  const { model, trans } = props;
  const { detail, error, loading } = model;

  if (detail === null) {
    return (
      <div className="jp-DataOps-datasetView" aria-busy={loading}>
        {error !== null ? (
          <div
            className="jp-DataOps-error"
            role="alert"
            data-test="dataops-dataset-error"
          >
            {error.message}
          </div>
        ) : (
          <p className="jp-DataOps-loading">{trans.__('Loading…')}</p>
        )}
      </div>
    );
  }

  const titleId = `jp-DataOps-dataset-${detail.name}`;
  return (
    <article
      className="jp-DataOps-datasetView"
      data-test="dataops-dataset-view"
      data-name={detail.name}
      aria-busy={loading}
      aria-labelledby={titleId}
    >
      {error !== null && (
        <div
          className="jp-DataOps-error"
          role="alert"
          data-test="dataops-dataset-error"
        >
          {error.message}
        </div>
      )}
      <header className="jp-DataOps-datasetView-header">
        <h1 className="jp-DataOps-datasetView-title" id={titleId}>
          {detail.title || detail.name}
        </h1>
        <code className="jp-DataOps-datasetView-name">{detail.name}</code>
        <AccessBadge access={detail.access} trans={trans} />
      </header>
      {detail.description && (
        <p
          className="jp-DataOps-datasetView-description"
          data-test="dataops-dataset-description"
        >
          {detail.description}
        </p>
      )}
      <Facts detail={detail} trans={trans} />
      <section className="jp-DataOps-section">
        <h2 className="jp-DataOps-section-title">{trans.__('Schema')}</h2>
        <SchemaTable columns={detail.columns} trans={trans} />
      </section>
      <section className="jp-DataOps-section">
        <h2 className="jp-DataOps-section-title">
          {trans.__('Preview')}
        </h2>
        <PreviewSection model={model} detail={detail} trans={trans} />
      </section>
    </article>
  );
}

function Facts(props: {
  detail: IDataOpsDatasetDetail;
  trans: TranslationBundle;
}): JSX.Element {
  const { detail, trans } = props;
  const latest = detail.versions.length > 0 ? detail.versions[0] : null;
  const access = detail.access;
  return (
    <dl className="jp-DataOps-facts jp-DataOps-datasetView-facts">
      <dt>{trans.__('Owner')}</dt>
      <dd data-test="dataops-dataset-owner">{detail.owner}</dd>
      <dt>{trans.__('Tags')}</dt>
      <dd data-test="dataops-dataset-tags">
        {detail.tags.length > 0 ? (
          detail.tags.map(tag => (
            <span key={tag} className="jp-DataOps-chip">
              {tag}
            </span>
          ))
        ) : (
          <span className="jp-DataOps-muted">{trans.__('none')}</span>
        )}
      </dd>
      <dt>{trans.__('Source')}</dt>
      <dd data-test="dataops-dataset-source">
        <span className="jp-DataOps-chip">{detail.source_type}</span>
        <SourceLocation source={detail.source} />
      </dd>
      <dt>{trans.__('Latest version')}</dt>
      <dd data-test="dataops-dataset-version">
        {latest === null ? (
          <span className="jp-DataOps-muted">{trans.__('not observed yet')}</span>
        ) : (
          <>
            <code
              className="jp-DataOps-fingerprint"
              data-test="dataops-version-fingerprint"
            >
              {latest.fingerprint}
            </code>
            <span className="jp-DataOps-muted">
              {' · '}
              {latest.row_count === null
                ? trans.__('rows unknown')
                : trans._n('%1 row', '%1 rows', latest.row_count)}
              {' · '}
              <time
                dateTime={utc(latest.observed_at)}
                title={Time.format(utc(latest.observed_at))}
                data-test="dataops-version-observed"
              >
                {trans.__(
                  'observed %1',
                  Time.formatHuman(utc(latest.observed_at))
                )}
              </time>
            </span>
          </>
        )}
      </dd>
      <dt>{trans.__('Your access')}</dt>
      <dd data-test="dataops-dataset-reason">
        <div>{access.reason}</div>
        {access.allowed && access.row_filter && (
          <div className="jp-DataOps-muted">
            {trans.__('A row filter limits the rows you see.')}
          </div>
        )}
        {access.allowed && access.masked_columns.length > 0 && (
          <div className="jp-DataOps-muted">
            {trans.__(
              'You see these columns masked: %1',
              access.masked_columns.join(', ')
            )}
          </div>
        )}
      </dd>
    </dl>
  );
}

function SourceLocation(props: {
  source: IDataOpsDatasetDetail['source'];
}): JSX.Element | null {
  const { source } = props;
  const text = (key: string) =>
    typeof source[key] === 'string' ? (source[key] as string) : null;
  const where = text('path') ?? text('table') ?? (text('query') ? 'query' : null);
  const url = text('url');
  if (where === null && url === null) {
    return null;
  }
  return (
    <>
      {where !== null && <code className="jp-DataOps-url">{where}</code>}
      {url !== null && (
        <div>
          <code className="jp-DataOps-url jp-DataOps-muted">{url}</code>
        </div>
      )}
    </>
  );
}

function SchemaTable(props: {
  columns: IDataOpsColumn[];
  trans: TranslationBundle;
}): JSX.Element {
  const { columns, trans } = props;
  if (columns.length === 0) {
    return (
      <p className="jp-DataOps-muted">
        {trans.__('The schema is not known until the source is observed.')}
      </p>
    );
  }
  return (
    <div className="jp-DataOps-tableScroll">
      <table className="jp-DataOps-table" data-test="dataops-schema-table">
        <thead>
          <tr>
            <th scope="col">{trans.__('Name')}</th>
            <th scope="col">{trans.__('Type')}</th>
            <th scope="col">{trans.__('Description')}</th>
            <th scope="col">{trans.__('Classification')}</th>
          </tr>
        </thead>
        <tbody>
          {columns.map(column => (
            <tr
              key={column.name}
              data-test="dataops-schema-row"
              data-name={column.name}
            >
              <th scope="row" className="jp-DataOps-table-name">
                <code>{column.name}</code>
                {column.masked && (
                  <span
                    className="jp-DataOps-badge jp-mod-masked"
                    data-test="dataops-column-masked"
                    title={trans.__(
                      'You see this column masked by the workspace policy.'
                    )}
                  >
                    {column.mask
                      ? trans.__('masked (%1)', column.mask)
                      : trans.__('masked')}
                  </span>
                )}
              </th>
              <td data-test="dataops-column-type">
                <code title={column.kind}>{column.type}</code>
              </td>
              <td data-test="dataops-column-description">
                {column.description || (
                  <span className="jp-DataOps-muted">—</span>
                )}
              </td>
              <td data-test="dataops-column-classification">
                {column.classification.map(label => (
                  <span key={label} className="jp-DataOps-chip">
                    {label}
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function PreviewSection(props: {
  model: DatasetModel;
  detail: IDataOpsDatasetDetail;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, detail, trans } = props;
  const { preview, previewError, previewLoading } = model;
  const [where, setWhere] = React.useState(model.where);
  const inputId = `jp-DataOps-where-${model.name}`;

  if (!detail.access.allowed) {
    return (
      <p className="jp-DataOps-muted" data-test="dataops-preview-denied">
        {trans.__('You may not read this dataset: %1', detail.access.reason)}
      </p>
    );
  }

  return (
    <div className="jp-DataOps-preview" aria-busy={previewLoading}>
      <form
        className="jp-DataOps-where"
        onSubmit={event => {
          event.preventDefault();
          void model.runPreview(where);
        }}
      >
        <label htmlFor={inputId} className="jp-DataOps-where-label">
          {trans.__('Where')}
        </label>
        <input
          id={inputId}
          className="jp-mod-styled jp-DataOps-where-input"
          type="text"
          value={where}
          placeholder={trans.__("a SQL condition, e.g. region = 'EU'")}
          spellCheck={false}
          autoComplete="off"
          data-test="dataops-preview-where"
          onChange={event => setWhere(event.target.value)}
        />
        <button
          type="submit"
          className="jp-DataOps-button"
          data-test="dataops-preview-run"
          disabled={previewLoading}
        >
          {trans.__('Run')}
        </button>
      </form>
      {previewError !== null && (
        <div
          className="jp-DataOps-error"
          role="alert"
          data-test="dataops-preview-error"
        >
          <div data-test="dataops-preview-error-message">
            {previewError.message}
          </div>
          <ErrorPosition problem={previewError} where={model.where} />
        </div>
      )}
      {preview !== null && (
        <PreviewTable preview={preview} access={detail.access} trans={trans} />
      )}
      {preview === null && previewError === null && previewLoading && (
        <p className="jp-DataOps-loading">{trans.__('Loading…')}</p>
      )}
    </div>
  );
}

/**
 * The condition with a caret under the position the server reported.
 */
function ErrorPosition(props: {
  problem: DatasetModel.IProblem;
  where: string;
}): JSX.Element | null {
  const { problem, where } = props;
  const { line, column } = problem.details;
  if (typeof line !== 'number' || typeof column !== 'number' || column < 1) {
    return null;
  }
  const text = where.split('\n')[line - 1];
  if (text === undefined || column > text.length + 1) {
    return null;
  }
  return (
    <pre
      className="jp-DataOps-caret"
      data-test="dataops-preview-error-position"
      aria-hidden="true"
    >
      {`${text}\n${' '.repeat(column - 1)}^`}
    </pre>
  );
}

function PreviewTable(props: {
  preview: IDataOpsPreview;
  access: IDataOpsDatasetDetail['access'];
  trans: TranslationBundle;
}): JSX.Element {
  const { preview, access, trans } = props;
  const masked = new Set(preview.masked_columns);
  const numeric = new Set(
    preview.columns
      .filter(c => ['integer', 'float', 'decimal'].includes(c.kind))
      .map(c => c.name)
  );
  const notes = [
    trans._n('%1 row', '%1 rows', preview.rows.length),
    trans.__('version %1', preview.version)
  ];
  if (access.row_filter) {
    notes.push(trans.__('filtered for you'));
  }
  if (preview.masked_columns.length > 0) {
    notes.push(trans.__('masked: %1', preview.masked_columns.join(', ')));
  }
  return (
    <>
      <p className="jp-DataOps-muted" data-test="dataops-preview-summary">
        {notes.join(' · ')}
      </p>
      {preview.rows.length === 0 ? (
        <p className="jp-DataOps-muted" data-test="dataops-preview-empty">
          {trans.__('No rows.')}
        </p>
      ) : (
        <div className="jp-DataOps-tableScroll">
          <table
            className="jp-DataOps-table jp-DataOps-previewTable"
            data-test="dataops-preview-table"
          >
            <thead>
              <tr>
                {preview.columns.map(column => (
                  <th
                    key={column.name}
                    scope="col"
                    className={masked.has(column.name) ? 'jp-mod-masked' : ''}
                    title={
                      masked.has(column.name)
                        ? trans.__('%1 (masked for you)', column.type)
                        : column.type
                    }
                  >
                    {column.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {preview.rows.map((row, index) => (
                <tr key={index} data-test="dataops-preview-row">
                  {preview.columns.map(column => (
                    <td
                      key={column.name}
                      data-column={column.name}
                      className={
                        numeric.has(column.name) ? 'jp-mod-numeric' : ''
                      }
                    >
                      <Cell value={row[column.name]} />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

function Cell(props: { value: unknown }): JSX.Element {
  const { value } = props;
  if (value === null || value === undefined) {
    return <span className="jp-DataOps-muted">null</span>;
  }
  return <>{typeof value === 'object' ? JSON.stringify(value) : String(value)}</>;
}
