import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Clipboard,
  ICommandPalette,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { copyIcon, refreshIcon } from '@jupyterlab/ui-components';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { DataOpsClient } from './api/client';
import { dataopsIcon } from './icons';
import {
  addDashboardCommands,
  dashboardActions,
  DashboardsModel
} from './dashboards';
import { addJobCommands, jobsPanelActions, targetNotebook } from './jobCommands';
import { JobsModel } from './jobs';
import { CatalogModel, DatasetModel, pullCode, StatusModel } from './model';
import {
  CommandIDs,
  IDataOpsCatalogModel,
  IDataOpsStatusModel
} from './tokens';
import { createDatasetWidget, DatasetWidget } from './widgets/dataset';
import { DataOpsSidebar } from './widgets/sidebar';

export * from './tokens';

const SIDEBAR_PLUGIN_ID = 'jupyter-dataops:sidebar';
const CATALOG_PLUGIN_ID = 'jupyter-dataops:catalog';

/**
 * The catalog model, the dataset views in the main area and their commands.
 */
const catalogPlugin: JupyterFrontEndPlugin<IDataOpsCatalogModel> = {
  id: CATALOG_PLUGIN_ID,
  description:
    'The DataOps data catalog: search, dataset views with schema, access and a governed preview.',
  autoStart: true,
  provides: IDataOpsCatalogModel,
  optional: [ITranslator, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    restorer: ILayoutRestorer | null
  ): IDataOpsCatalogModel => {
    const trans = (translator ?? nullTranslator).load('jupyter_dataops');
    const client = new DataOpsClient({
      serverSettings: app.serviceManager.serverSettings
    });
    const catalog = new CatalogModel({ client });
    const tracker = new WidgetTracker<DatasetWidget>({
      namespace: 'jupyter-dataops-dataset'
    });

    const nameOf = (args: ReadonlyPartialJSONObject): string =>
      typeof args['name'] === 'string' ? args['name'] : '';

    app.commands.addCommand(CommandIDs.openDataset, {
      label: args =>
        nameOf(args)
          ? trans.__('Open Dataset %1', nameOf(args))
          : trans.__('Open Dataset'),
      caption: trans.__(
        'Show a dataset of the catalog: schema, access and a preview'
      ),
      icon: dataopsIcon,
      describedBy: {
        args: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'The dataset name' }
          },
          required: ['name']
        }
      },
      execute: async args => {
        const name = nameOf(args);
        if (!name) {
          throw new Error(`${CommandIDs.openDataset} needs a dataset name`);
        }
        const open = tracker.find(w => w.content.model.name === name);
        if (open) {
          app.shell.activateById(open.id);
          return open;
        }
        const widget = createDatasetWidget({
          model: new DatasetModel({ client, name }),
          trans,
          copyPullCode: () =>
            void app.commands.execute(CommandIDs.copyPullCode, { name })
        });
        await tracker.add(widget);
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    app.commands.addCommand(CommandIDs.copyPullCode, {
      label: args =>
        nameOf(args)
          ? trans.__('Copy Pull Code of %1', nameOf(args))
          : trans.__('Copy Pull Code'),
      caption: trans.__('Copy the code that pulls a dataset into a notebook'),
      icon: copyIcon,
      describedBy: {
        args: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'The dataset name' }
          },
          required: ['name']
        }
      },
      execute: args => {
        const name = nameOf(args);
        if (!name) {
          throw new Error(`${CommandIDs.copyPullCode} needs a dataset name`);
        }
        const code = pullCode(name);
        Clipboard.copyToSystem(code);
        Notification.success(trans.__('Copied: %1', code), {
          autoClose: 3000
        });
      }
    });

    restorer
      ?.restore(tracker, {
        command: CommandIDs.openDataset,
        args: widget => ({ name: widget.content.model.name }),
        name: widget => widget.content.model.name
      })
      .catch(reason => {
        console.error('Failed to restore the DataOps dataset views.', reason);
      });

    return catalog;
  }
};

/**
 * The DataOps sidebar, its refresh command and the shared status model.
 */
const sidebarPlugin: JupyterFrontEndPlugin<IDataOpsStatusModel> = {
  id: SIDEBAR_PLUGIN_ID,
  description:
    'The DataOps sidebar: status (user, store, workspace policy), catalog and jobs, with the "Run as Job" command.',
  autoStart: true,
  provides: IDataOpsStatusModel,
  requires: [IDataOpsCatalogModel],
  optional: [
    ITranslator,
    ISettingRegistry,
    ICommandPalette,
    ILayoutRestorer,
    ILabShell
  ],
  activate: (
    app: JupyterFrontEnd,
    catalog: IDataOpsCatalogModel,
    translator: ITranslator | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null
  ): IDataOpsStatusModel => {
    const trans = (translator ?? nullTranslator).load('jupyter_dataops');
    const client = new DataOpsClient({
      serverSettings: app.serviceManager.serverSettings
    });
    const model = new StatusModel({ client });
    const jobs = new JobsModel({ client });
    const dashboards = new DashboardsModel({ client });

    const sidebar = new DataOpsSidebar({
      model,
      catalog,
      trans,
      openDataset: name => {
        app.commands
          .execute(CommandIDs.openDataset, { name })
          .catch(reason => {
            console.error(`Failed to open the dataset ${name}.`, reason);
          });
      },
      jobs: { model: jobs, ...jobsPanelActions(app, trans) },
      dashboards: { model: dashboards, ...dashboardActions(dashboards, trans) }
    });
    app.shell.add(sidebar, 'left', { rank: 1000 });
    restorer?.add(sidebar, sidebar.id);

    addJobCommands({
      app,
      client,
      model: jobs,
      trans,
      palette,
      showJobs: () => {
        sidebar.tab = 'jobs';
        app.shell.activateById(sidebar.id);
      }
    });

    addDashboardCommands({
      app,
      model: dashboards,
      trans,
      palette,
      targetNotebook: () => targetNotebook(app),
      showDashboards: () => {
        sidebar.tab = 'dashboards';
        app.shell.activateById(sidebar.id);
      }
    });

    app.commands.addCommand(CommandIDs.refreshStatus, {
      label: trans.__('Refresh DataOps Status'),
      caption: trans.__('Fetch the DataOps status from the server again'),
      icon: args => (args['isPalette'] ? undefined : refreshIcon),
      execute: () => model.refresh()
    });
    palette?.addItem({
      command: CommandIDs.refreshStatus,
      category: trans.__('DataOps')
    });

    const settings = settingRegistry
      ? settingRegistry.load(SIDEBAR_PLUGIN_ID).catch(reason => {
          console.error(
            `Failed to load the settings of ${SIDEBAR_PLUGIN_ID}.`,
            reason
          );
          return null;
        })
      : Promise.resolve(null);
    void settings.then(loaded => {
      if (loaded) {
        const update = () => {
          model.refreshInterval = loaded.get('refreshInterval')
            .composite as number;
        };
        update();
        loaded.changed.connect(update);
      }
    });

    if (labShell) {
      sidebar.landed = Private.landOnTheCatalog(app, labShell, settings, () => {
        sidebar.tab = 'catalog';
        labShell.activateById(sidebar.id);
      });
    }

    return model;
  }
};

export default [catalogPlugin, sidebarPlugin];

namespace Private {
  /**
   * On the first start of a workspace (no saved layout), open the sidebar on
   * the Catalog unless the `openOnFirstStart` setting says not to. JupyterLab
   * itself shows the file browser then, once the layout is restored: this
   * runs after it, so the sidebar is what a newcomer sees. Resolves with
   * whether it opened the sidebar.
   */
  export async function landOnTheCatalog(
    app: JupyterFrontEnd,
    shell: ILabShell,
    settings: Promise<ISettingRegistry.ISettings | null>,
    open: () => void
  ): Promise<boolean> {
    const [layout, loaded] = await Promise.all([shell.restored, settings]);
    await app.restored;
    await new Promise(resolve => setTimeout(resolve, 0));
    const wanted = loaded?.get('openOnFirstStart').composite !== false;
    if (layout.fresh && wanted && shell.mode !== 'single-document') {
      open();
      return true;
    }
    return false;
  }
}
