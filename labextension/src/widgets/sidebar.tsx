import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { IDashboardsPanelProps } from '../components/DashboardsPanel';
import { IExperimentsPanelProps } from '../components/ExperimentsPanel';
import { IJobsPanelProps } from '../components/JobsPanel';
import { SidebarPanel, SidebarTab } from '../components/SidebarPanel';
import { dataopsIcon } from '../icons';
import { IDataOpsCatalogModel, IDataOpsStatusModel } from '../tokens';

/**
 * The id of the DataOps sidebar widget.
 */
export const SIDEBAR_ID = 'jupyter-dataops-sidebar';

/**
 * The DataOps sidebar: a Lumino shell around the React panel with the tabs
 * "Status", "Catalog", "Jobs" and "Experiments". The status and the runs poll only while
 * their tab is visible; the catalog is fetched when its tab is first shown.
 */
export class DataOpsSidebar extends ReactWidget {
  constructor(options: DataOpsSidebar.IOptions) {
    super();
    this._status = options.model;
    this._catalog = options.catalog;
    this._openDataset = options.openDataset;
    this._jobs = options.jobs;
    this._dashboards = options.dashboards;
    this._experiments = options.experiments;
    this._trans = options.trans;
    this.id = SIDEBAR_ID;
    this.addClass('jp-DataOps-sidebar');
    this.title.icon = dataopsIcon;
    this.title.caption = this._trans.__('DataOps');
    // Widget.dispose() clears these connections.
    this._status.changed.connect(this._onModelChanged, this);
    this._catalog.changed.connect(this._onModelChanged, this);
    this._jobs.model.changed.connect(this._onModelChanged, this);
    this._dashboards.model.changed.connect(this._onModelChanged, this);
    this._experiments.model.changed.connect(this._onModelChanged, this);
  }

  /**
   * Whether the sidebar opened itself on the Catalog, as it does when a
   * workspace starts for the first time; settles once that is decided.
   */
  landed: Promise<boolean> = Promise.resolve(false);

  /**
   * The visible tab.
   */
  get tab(): SidebarTab {
    return this._tab;
  }

  set tab(tab: SidebarTab) {
    if (tab === this._tab) {
      return;
    }
    this._tab = tab;
    this._syncModels();
    this.update();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._syncModels();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._status.stopPolling();
    this._jobs.model.stopPolling();
    this._experiments.model.stopPolling();
  }

  render(): JSX.Element {
    return (
      <SidebarPanel
        tab={this._tab}
        onTabChange={tab => {
          this.tab = tab;
        }}
        status={this._status}
        catalog={this._catalog}
        onOpenDataset={this._openDataset}
        jobs={this._jobs}
        dashboards={this._dashboards}
        experiments={this._experiments}
        trans={this._trans}
      />
    );
  }

  private _syncModels(): void {
    if (!this.isVisible) {
      return;
    }
    if (this._tab === 'status') {
      this._status.startPolling();
    } else {
      this._status.stopPolling();
    }
    if (this._tab === 'jobs') {
      this._jobs.model.startPolling();
    } else {
      this._jobs.model.stopPolling();
    }
    if (this._tab === 'dashboards' && !this._dashboards.model.loading) {
      void this._dashboards.model.refresh();
    }
    if (this._tab === 'experiments') {
      this._experiments.model.startPolling();
    } else {
      this._experiments.model.stopPolling();
    }
    if (
      this._tab === 'catalog' &&
      this._catalog.datasets === null &&
      !this._catalog.loading
    ) {
      void this._catalog.refresh();
    }
  }

  private _onModelChanged(): void {
    this.update();
  }

  private _status: IDataOpsStatusModel;
  private _catalog: IDataOpsCatalogModel;
  private _openDataset: (name: string) => void;
  private _jobs: Omit<IJobsPanelProps, 'trans'>;
  private _dashboards: Omit<IDashboardsPanelProps, 'trans'>;
  private _experiments: Omit<IExperimentsPanelProps, 'trans'>;
  private _trans: TranslationBundle;
  private _tab: SidebarTab = 'status';
}

export namespace DataOpsSidebar {
  export interface IOptions {
    /**
     * The status model.
     */
    model: IDataOpsStatusModel;

    /**
     * The catalog model.
     */
    catalog: IDataOpsCatalogModel;

    /**
     * Open a dataset in the main area.
     */
    openDataset: (name: string) => void;

    /**
     * The jobs model and the actions of the Jobs tab.
     */
    jobs: Omit<IJobsPanelProps, 'trans'>;

    /**
     * The dashboards model and the actions of the Dashboards tab.
     */
    dashboards: Omit<IDashboardsPanelProps, 'trans'>;

    /**
     * The experiments model and the actions of the Experiments tab.
     */
    experiments: Omit<IExperimentsPanelProps, 'trans'>;

    trans: TranslationBundle;
  }
}
