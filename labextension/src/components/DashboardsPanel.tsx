import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { DashboardsModel, IDashboardActions } from '../dashboards';
import { formatRelative, utc } from '../utils';

export interface IDashboardsPanelProps extends IDashboardActions {
  model: DashboardsModel;
  trans: TranslationBundle;
}

/**
 * The Dashboards tab: what the user may see, with its last update, whether it
 * is stale (and why), and what its owner may do with it.
 */
export function DashboardsPanel(props: IDashboardsPanelProps): JSX.Element {
  const { model, trans } = props;
  if (model.error) {
    return (
      <p className="jp-DataOps-error" data-test="dataops-dashboards-error">
        {model.error}
      </p>
    );
  }
  const items = model.dashboards;
  if (items === null) {
    return <p className="jp-DataOps-muted">{trans.__('Loading…')}</p>;
  }
  if (items.length === 0) {
    return (
      <p className="jp-DataOps-muted" data-test="dataops-dashboards-empty">
        {trans.__(
          'No dashboard yet. Publish a notebook with "Publish as Dashboard" in its toolbar.'
        )}
      </p>
    );
  }
  return (
    <ul className="jp-DataOps-dashboards" data-test="dataops-dashboards">
      {items.map(d => {
        const last = d.last_render;
        const when = last?.run_finished_at
          ? trans.__('updated %1', formatRelative(utc(last.run_finished_at)))
          : d.pending_run
            ? trans.__('its first run is under way')
            : trans.__('not rendered yet');
        return (
          <li
            key={d.id}
            className="jp-DataOps-dashboard"
            data-test="dataops-dashboard"
            data-slug={d.slug}
          >
            <div className="jp-DataOps-dashboard-head">
              <a
                href={d.url}
                target="_blank"
                rel="noopener"
                className="jp-DataOps-dashboard-title"
                onClick={event => {
                  event.preventDefault();
                  props.open(d);
                }}
              >
                {d.title}
              </a>
              <span className="jp-DataOps-muted"> {d.slug}</span>
            </div>
            <div className="jp-DataOps-muted" data-test="dataops-dashboard-when">
              {when}
              {d.pending_run && last ? ` · ${trans.__('refreshing')}` : ''}
            </div>
            {d.stale && (
              <div
                className="jp-DataOps-stale"
                data-test="dataops-dashboard-stale"
                title={d.stale.reason}
              >
                {trans.__(
                  'stale since %1: %2',
                  formatRelative(utc(d.stale.since)),
                  d.stale.reason
                )}
              </div>
            )}
            <div className="jp-DataOps-muted">
              {trans.__(
                'viewers: %1',
                [...d.viewers.users, ...d.viewers.groups.map(g => `@${g}`)].join(
                  ', '
                ) || trans.__('you and admins')
              )}
            </div>
            <div className="jp-DataOps-actions">
              <button
                type="button"
                className="jp-Button jp-mod-minimal"
                onClick={() => props.open(d)}
              >
                {trans.__('Open')}
              </button>
              {d.live && (
                <button
                  type="button"
                  className="jp-Button jp-mod-minimal"
                  onClick={() => props.open(d, true)}
                >
                  {trans.__('Live')}
                </button>
              )}
              {d.can_manage && (
                <>
                  <button
                    type="button"
                    className="jp-Button jp-mod-minimal"
                    data-test="dataops-dashboard-share"
                    onClick={() => void props.share(d)}
                  >
                    {trans.__('Share link')}
                  </button>
                  <button
                    type="button"
                    className="jp-Button jp-mod-minimal"
                    onClick={() => void props.editViewers(d)}
                  >
                    {trans.__('Viewers')}
                  </button>
                  <button
                    type="button"
                    className="jp-Button jp-mod-minimal"
                    data-test="dataops-dashboard-unpublish"
                    onClick={() => void props.unpublish(d)}
                  >
                    {trans.__('Unpublish')}
                  </button>
                </>
              )}
            </div>
          </li>
        );
      })}
    </ul>
  );
}
