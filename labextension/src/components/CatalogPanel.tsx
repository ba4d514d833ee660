import { TranslationBundle } from '@jupyterlab/translation';
import { InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IDataOpsCatalogModel, IDataOpsDatasetSummary } from '../tokens';
import { AccessBadge, AccessHints } from './AccessBadge';

export interface ICatalogPanelProps {
  model: IDataOpsCatalogModel;
  onOpen: (name: string) => void;
  trans: TranslationBundle;
}

/**
 * The catalog in the sidebar: a search box, tag filters and the datasets
 * with the current user's access to each.
 */
export function CatalogPanel(props: ICatalogPanelProps): JSX.Element {
  const { model, onOpen, trans } = props;
  const { datasets, error, loading } = model;
  const query = model.query.trim();

  let body: React.ReactNode = null;
  if (datasets === null) {
    body = error === null && (
      <p className="jp-DataOps-loading" data-test="dataops-catalog-loading">
        {trans.__('Loading…')}
      </p>
    );
  } else if (datasets.length === 0) {
    body = (
      <p className="jp-DataOps-muted" data-test="dataops-catalog-empty">
        {query || model.tag
          ? trans.__('No dataset matches.')
          : trans.__('The catalog is empty. Add datasets to dataops.yaml.')}
      </p>
    );
  } else {
    body = (
      <ul
        className="jp-DataOps-datasets"
        data-test="dataops-dataset-list"
        aria-label={trans.__('Datasets')}
      >
        {datasets.map(dataset => (
          <DatasetItem
            key={dataset.name}
            dataset={dataset}
            onOpen={onOpen}
            trans={trans}
          />
        ))}
      </ul>
    );
  }

  return (
    <div
      className="jp-DataOps-catalog"
      data-test="dataops-catalog"
      aria-busy={loading}
    >
      <SearchBox model={model} trans={trans} />
      <TagFilter model={model} trans={trans} />
      {error !== null && (
        <div
          className="jp-DataOps-error"
          role="alert"
          data-test="dataops-catalog-error"
        >
          {error}
        </div>
      )}
      {body}
    </div>
  );
}

function SearchBox(props: {
  model: IDataOpsCatalogModel;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  // The input keeps its own value: the model re-renders the panel later
  // (after the signal), which would move the caret of a controlled input.
  const [value, setValue] = React.useState(model.query);
  const update = (text: string) => {
    setValue(text);
    model.query = text;
  };
  return (
    <InputGroup
      className="jp-DataOps-search"
      type="text"
      value={value}
      placeholder={trans.__('Search datasets')}
      aria-label={trans.__('Search datasets')}
      title={trans.__(
        'Search names, titles, descriptions and columns; Escape clears'
      )}
      spellCheck={false}
      data-test="dataops-catalog-search"
      rightIcon="ui-components:search"
      onChange={event => update(event.target.value)}
      onKeyDown={event => {
        if (event.key === 'Escape' && value) {
          event.stopPropagation();
          update('');
        }
      }}
    />
  );
}

function TagFilter(props: {
  model: IDataOpsCatalogModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  const tags = model.tags;
  if (tags.length === 0) {
    return null;
  }
  return (
    <div
      className="jp-DataOps-tagfilter"
      role="group"
      aria-label={trans.__('Filter by tag')}
      data-test="dataops-tag-filter"
    >
      {tags.map(tag => {
        const selected = tag === model.tag;
        return (
          <button
            key={tag}
            type="button"
            className={`jp-DataOps-chip jp-DataOps-tagchip${selected ? ' jp-mod-selected' : ''}`}
            aria-pressed={selected}
            title={
              selected
                ? trans.__('Show datasets with any tag')
                : trans.__('Show only datasets tagged %1', tag)
            }
            data-test="dataops-tag-chip"
            data-tag={tag}
            onClick={() => {
              model.tag = selected ? null : tag;
            }}
          >
            {tag}
          </button>
        );
      })}
    </div>
  );
}

function DatasetItem(props: {
  dataset: IDataOpsDatasetSummary;
  onOpen: (name: string) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { dataset, onOpen, trans } = props;
  return (
    <li
      className="jp-DataOps-dataset"
      data-test="dataops-dataset-item"
      data-name={dataset.name}
    >
      <button
        type="button"
        className="jp-DataOps-dataset-open"
        title={dataset.description || trans.__('Open %1', dataset.name)}
        onClick={() => onOpen(dataset.name)}
      >
        <span className="jp-DataOps-dataset-head">
          <span
            className="jp-DataOps-dataset-name"
            data-test="dataops-dataset-name"
          >
            {dataset.name}
          </span>
          <AccessBadge access={dataset.access} trans={trans} />
        </span>
        {dataset.title && (
          <span
            className="jp-DataOps-dataset-title"
            data-test="dataops-dataset-title"
          >
            {dataset.title}
          </span>
        )}
        <span className="jp-DataOps-dataset-meta">
          <span
            className="jp-DataOps-dataset-owner"
            data-test="dataops-dataset-owner"
          >
            {trans.__('owner: %1', dataset.owner)}
          </span>
          {dataset.tags.map(tag => (
            <span
              key={tag}
              className="jp-DataOps-chip"
              data-test="dataops-dataset-tag"
            >
              {tag}
            </span>
          ))}
        </span>
        <AccessHints access={dataset.access} trans={trans} />
      </button>
    </li>
  );
}
