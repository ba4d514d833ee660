import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  MainAreaWidget,
  Notification,
  showDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { DataOpsClient } from './api/client';
import { dataopsIcon } from './icons';
import { isActive, JobsModel } from './jobs';
import { CommandIDs, IDataOpsJob, IDataOpsRun } from './tokens';
import { errorMessage } from './utils';
import { RunForm, RunNotebookDialog } from './widgets/runDialog';
import { createRunLogWidget, RunLogView } from './widgets/runLog';

/**
 * Where "Open output" copies a run's executed notebook, relative to the
 * workspace root: `dataops-outputs/<notebook>-<run id>.ipynb`.
 */
export const OUTPUT_DIR = 'dataops-outputs';

/**
 * The workspace path of the copy of a run's executed notebook.
 */
export function outputCopyPath(run: IDataOpsRun): string {
  const stem = PathExt.basename(run.notebook_path, '.ipynb');
  return PathExt.join(OUTPUT_DIR, `${stem}-${run.id.slice(0, 8)}.ipynb`);
}

export interface IJobCommandsOptions {
  app: JupyterFrontEnd;
  client: DataOpsClient;
  model: JobsModel;
  trans: TranslationBundle;
  palette: ICommandPalette | null;
  /**
   * Show the Jobs tab of the sidebar.
   */
  showJobs: () => void;
}

/**
 * The notebook a command acts on: the current one, or the file browser's
 * selected notebook.
 */
export function targetNotebook(app: JupyterFrontEnd): string | null {
  return Private.targetNotebook(app);
}

/**
 * Add the commands of the jobs: "Run as Job", "Open Run Output" and
 * "Show Run Log".
 */
export function addJobCommands(options: IJobCommandsOptions): void {
  const { app, client, model, trans, palette, showJobs } = options;
  const logs = new WidgetTracker<MainAreaWidget<RunLogView>>({
    namespace: 'jupyter-dataops-run-log'
  });
  const idOf = (args: ReadonlyPartialJSONObject): string => {
    const id = args['id'];
    if (typeof id !== 'string' || !id) {
      throw new Error('This command needs a run id');
    }
    return id;
  };

  app.commands.addCommand(CommandIDs.runNotebook, {
    label: args =>
      args['isPalette']
        ? trans.__('Run Notebook as Job…')
        : trans.__('Run as Job…'),
    caption: trans.__(
      'Run the notebook as a job (headless, with parameters); follow it in the DataOps Jobs tab'
    ),
    icon: args => (args['isPalette'] ? undefined : dataopsIcon),
    describedBy: {
      args: {
        type: 'object',
        properties: {
          path: {
            type: 'string',
            description:
              'The notebook; default: the current notebook or the selected file'
          }
        }
      }
    },
    isEnabled: args =>
      (typeof args['path'] === 'string' && args['path'] !== '') ||
      Private.targetNotebook(app) !== null,
    execute: async args => {
      const path =
        typeof args['path'] === 'string' && args['path']
          ? args['path']
          : Private.targetNotebook(app);
      if (!path) {
        Notification.warning(
          trans.__('Open or select a notebook to run it as a job.'),
          { autoClose: 5000 }
        );
        return null;
      }
      const current = app.shell.currentWidget;
      if (Private.documentPath(current) === path && Private.isDirty(current)) {
        // The run copies the notebook as saved on disk.
        await app.commands.execute('docmanager:save');
      }
      const form = new RunForm({
        client,
        path,
        trans,
        kernelspecs: app.serviceManager.kernelspecs
      });
      const result = await new RunNotebookDialog(form, trans).launch();
      const made = result.value;
      if (!result.button.accept || made === null) {
        return null;
      }
      if (made.job !== null) {
        model.addJob(made.job);
        showJobs();
        Notification.info(trans.__('Job %1 scheduled.', made.job.name), {
          autoClose: 3000
        });
        return made.job.name;
      }
      const run = made.run;
      model.add(run);
      showJobs();
      Notification.info(trans.__('Run of %1 queued.', path), {
        autoClose: 3000
      });
      return run.id;
    }
  });
  palette?.addItem({
    command: CommandIDs.runNotebook,
    category: trans.__('DataOps')
  });
  // The file browser's context menu, on notebooks.
  app.contextMenu.addItem({
    command: CommandIDs.runNotebook,
    selector: '.jp-DirListing-item[data-file-type="notebook"]',
    rank: 60
  });

  app.commands.addCommand(CommandIDs.openRunOutput, {
    label: trans.__('Open Run Output'),
    caption: trans.__(
      'Open the executed notebook of a run (copied under %1/)',
      OUTPUT_DIR
    ),
    execute: async args => {
      const run = await client.getRun(idOf(args));
      const path = outputCopyPath(run);
      const contents = app.serviceManager.contents;
      // A finished run's copy never changes: open it again as it is (it may
      // be open, and rewriting it would say "changed on disk").
      const exists = await contents
        .get(path, { content: false })
        .then(() => true)
        .catch(() => false);
      if (!exists || isActive(run)) {
        const text = await client.getRunOutput(run.id, 'notebook');
        await contents.save(OUTPUT_DIR, { type: 'directory' });
        await contents.save(path, {
          type: 'notebook',
          format: 'json',
          content: JSON.parse(text)
        });
      }
      return app.commands.execute('docmanager:open', {
        path,
        factory: 'Notebook'
      });
    }
  });

  app.commands.addCommand(CommandIDs.openRunLog, {
    label: trans.__('Show Run Log'),
    caption: trans.__("Show a run's log, following it while it runs"),
    execute: async args => {
      const runId = idOf(args);
      const open = logs.find(w => w.content.runId === runId);
      if (open) {
        app.shell.activateById(open.id);
        return open;
      }
      const label =
        typeof args['label'] === 'string' && args['label']
          ? args['label']
          : runId.slice(0, 8);
      const widget = createRunLogWidget({ client, runId, trans, label });
      await logs.add(widget);
      app.shell.add(widget, 'main');
      app.shell.activateById(widget.id);
      return widget;
    }
  });
}

/**
 * The callbacks of the Jobs tab, running the commands above.
 */
export function jobsPanelActions(
  app: JupyterFrontEnd,
  trans: TranslationBundle
): {
  onOpenOutput: (run: IDataOpsRun) => void;
  onOpenLog: (run: IDataOpsRun) => void;
  onRunNotebook: () => void;
  confirmDeleteJob: (job: IDataOpsJob) => Promise<boolean>;
  onError: (message: string) => void;
} {
  const onError = (message: string) =>
    void Notification.error(message, { autoClose: 8000 });
  const run = (command: string, args: ReadonlyPartialJSONObject) => {
    app.commands
      .execute(command, args)
      .catch(reason => onError(errorMessage(reason)));
  };
  return {
    onOpenOutput: r => run(CommandIDs.openRunOutput, { id: r.id }),
    onOpenLog: r =>
      run(CommandIDs.openRunLog, {
        id: r.id,
        label: `${PathExt.basename(r.notebook_path)} ${r.id.slice(0, 8)}`
      }),
    onRunNotebook: () => run(CommandIDs.runNotebook, {}),
    confirmDeleteJob: async job => {
      const result = await showDialog({
        title: trans.__('Delete job %1?', job.name),
        body: trans.__(
          'The definition and its schedule are deleted; its past runs and their outputs stay.'
        ),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Cancel') }),
          Dialog.warnButton({ label: trans.__('Delete') })
        ]
      });
      return result.button.accept;
    },
    onError
  };
}

namespace Private {
  /**
   * The path of a document widget (duck-typed: `context.path`), or null.
   */
  export function documentPath(widget: Widget | null): string | null {
    const context = (widget as { context?: { path?: unknown } } | null)
      ?.context;
    return typeof context?.path === 'string' ? context.path : null;
  }

  export function isDirty(widget: Widget | null): boolean {
    const context = (
      widget as { context?: { model?: { dirty?: unknown } } } | null
    )?.context;
    return context?.model?.dirty === true;
  }

  /**
   * The notebook to run: the one selected in the file browser when its
   * context menu is open, else the current notebook.
   */
  export function targetNotebook(app: JupyterFrontEnd): string | null {
    const item = app.contextMenuHitTest(node =>
      node.classList.contains('jp-DirListing-item')
    );
    if (item) {
      const selected = selectedInFileBrowser(app);
      if (selected) {
        return selected;
      }
    }
    const path = documentPath(app.shell.currentWidget);
    return path !== null && path.endsWith('.ipynb') ? path : null;
  }

  /**
   * The first notebook selected in the default file browser (duck-typed, to
   * avoid depending on @jupyterlab/filebrowser for one call).
   */
  function selectedInFileBrowser(app: JupyterFrontEnd): string | null {
    for (const widget of app.shell.widgets('left')) {
      const browser = widget as {
        selectedItems?: () => Iterable<{ path?: unknown; type?: unknown }>;
      };
      if (widget.id !== 'filebrowser' || !browser.selectedItems) {
        continue;
      }
      for (const item of browser.selectedItems()) {
        if (item.type === 'notebook' && typeof item.path === 'string') {
          return item.path;
        }
      }
    }
    return null;
  }
}
