import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { refreshIcon } from '@jupyterlab/ui-components';

import { DataOpsClient } from './api/client';
import { StatusModel } from './model';
import { CommandIDs, IDataOpsStatusModel } from './tokens';
import { DataOpsSidebar } from './widgets/sidebar';

export * from './tokens';

const SIDEBAR_PLUGIN_ID = 'jupyter-dataops:sidebar';

/**
 * The DataOps sidebar, its refresh command and the shared status model.
 */
const sidebarPlugin: JupyterFrontEndPlugin<IDataOpsStatusModel> = {
  id: SIDEBAR_PLUGIN_ID,
  description:
    'The DataOps sidebar: current user and groups, metadata store and workspace policy status.',
  autoStart: true,
  provides: IDataOpsStatusModel,
  optional: [ITranslator, ISettingRegistry, ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ): IDataOpsStatusModel => {
    const trans = (translator ?? nullTranslator).load('jupyter_dataops');
    const client = new DataOpsClient({
      serverSettings: app.serviceManager.serverSettings
    });
    const model = new StatusModel({ client });

    const sidebar = new DataOpsSidebar({ model, trans });
    app.shell.add(sidebar, 'left', { rank: 1000 });
    restorer?.add(sidebar, sidebar.id);

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

    if (settingRegistry) {
      settingRegistry
        .load(SIDEBAR_PLUGIN_ID)
        .then(settings => {
          const update = () => {
            model.refreshInterval = settings.get('refreshInterval')
              .composite as number;
          };
          update();
          settings.changed.connect(update);
        })
        .catch(reason => {
          console.error(
            `Failed to load the settings of ${SIDEBAR_PLUGIN_ID}.`,
            reason
          );
        });
    }

    return model;
  }
};

export default [sidebarPlugin];
