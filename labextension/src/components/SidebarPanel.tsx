import { TranslationBundle } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IDataOpsCatalogModel, IDataOpsStatusModel } from '../tokens';
import { CatalogPanel } from './CatalogPanel';
import { DashboardsPanel, IDashboardsPanelProps } from './DashboardsPanel';
import { ExperimentsPanel, IExperimentsPanelProps } from './ExperimentsPanel';
import { IJobsPanelProps, JobsPanel } from './JobsPanel';
import { StatusPanel } from './StatusPanel';

/**
 * The tabs of the DataOps sidebar.
 */
export type SidebarTab =
  | 'status'
  | 'catalog'
  | 'jobs'
  | 'experiments'
  | 'dashboards';

export interface ISidebarPanelProps {
  tab: SidebarTab;
  onTabChange: (tab: SidebarTab) => void;
  status: IDataOpsStatusModel;
  catalog: IDataOpsCatalogModel;
  onOpenDataset: (name: string) => void;
  jobs: Omit<IJobsPanelProps, 'trans'>;
  dashboards: Omit<IDashboardsPanelProps, 'trans'>;
  experiments: Omit<IExperimentsPanelProps, 'trans'>;
  trans: TranslationBundle;
}

/**
 * The DataOps sidebar: a header with a refresh button for the visible tab,
 * then the tabs "Status | Catalog | Jobs | Experiments".
 */
export function SidebarPanel(props: ISidebarPanelProps): JSX.Element {
  const {
    tab,
    onTabChange,
    status,
    catalog,
    onOpenDataset,
    jobs,
    experiments,
    dashboards,
    trans
  } = props;
  const tabs: [SidebarTab, string][] = [
    ['status', trans.__('Status')],
    ['catalog', trans.__('Catalog')],
    ['jobs', trans.__('Jobs')],
    ['experiments', trans.__('Experiments')],
    ['dashboards', trans.__('Dashboards')]
  ];
  const refreshers = {
    status: {
      label: trans.__('Refresh DataOps status'),
      loading: status.loading,
      run: () => status.refresh()
    },
    catalog: {
      label: trans.__('Refresh the catalog'),
      loading: catalog.loading,
      run: () => catalog.refresh()
    },
    jobs: {
      label: trans.__('Refresh the runs and jobs'),
      loading: jobs.model.loading,
      run: () => jobs.model.refresh()
    },
    experiments: {
      label: trans.__('Refresh the experiments'),
      loading: experiments.model.loading,
      run: () => experiments.model.refresh()
    },
    dashboards: {
      label: trans.__('Refresh the dashboards'),
      loading: dashboards.model.loading,
      run: () => dashboards.model.refresh()
    }
  };
  const refresh = refreshers[tab];

  const onKeyDown = (event: React.KeyboardEvent) => {
    // Arrow keys move between tabs, as in any ARIA tab list.
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') {
      return;
    }
    event.preventDefault();
    const index = tabs.findIndex(([id]) => id === tab);
    const step = event.key === 'ArrowRight' ? 1 : tabs.length - 1;
    const next = tabs[(index + step) % tabs.length][0];
    onTabChange(next);
    const node = document.getElementById(Private.tabId(next));
    node?.focus();
  };

  return (
    <div className="jp-DataOps-panel">
      <header className="jp-DataOps-header">
        <h2 className="jp-DataOps-title">{trans.__('DataOps')}</h2>
        <button
          type="button"
          className="jp-DataOps-refresh jp-ToolbarButtonComponent jp-mod-minimal jp-Button"
          data-test="dataops-refresh"
          title={refresh.label}
          aria-label={refresh.label}
          disabled={refresh.loading}
          onClick={() => void refresh.run()}
        >
          <refreshIcon.react
            tag="span"
            className="jp-ToolbarButtonComponent-icon"
          />
          <span className="jp-ToolbarButtonComponent-label">
            {trans.__('Refresh')}
          </span>
        </button>
      </header>
      <div
        className="jp-DataOps-tabs"
        role="tablist"
        aria-label={trans.__('DataOps')}
        onKeyDown={onKeyDown}
      >
        {tabs.map(([id, label]) => (
          <button
            key={id}
            type="button"
            role="tab"
            id={Private.tabId(id)}
            className={`jp-DataOps-tab${id === tab ? ' jp-mod-active' : ''}`}
            aria-selected={id === tab}
            aria-controls={Private.panelId(id)}
            tabIndex={id === tab ? 0 : -1}
            data-test={`dataops-tab-${id}`}
            onClick={() => onTabChange(id)}
          >
            {label}
          </button>
        ))}
      </div>
      <div
        className="jp-DataOps-tabpanel"
        role="tabpanel"
        id={Private.panelId(tab)}
        aria-labelledby={Private.tabId(tab)}
      >
        {tab === 'status' && <StatusPanel model={status} trans={trans} />}
        {tab === 'catalog' && (
          <CatalogPanel model={catalog} onOpen={onOpenDataset} trans={trans} />
        )}
        {tab === 'jobs' && <JobsPanel {...jobs} trans={trans} />}
        {tab === 'experiments' && (
          <ExperimentsPanel {...experiments} trans={trans} />
        )}
        {tab === 'dashboards' && (
          <DashboardsPanel {...dashboards} trans={trans} />
        )}
      </div>
    </div>
  );
}

namespace Private {
  export function tabId(tab: SidebarTab): string {
    return `jp-DataOps-tab-${tab}`;
  }

  export function panelId(tab: SidebarTab): string {
    return `jp-DataOps-tabpanel-${tab}`;
  }
}
