import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Clipboard,
  Dialog,
  ICommandPalette,
  Notification,
  showDialog
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { DataOpsClient } from './api/client';
import { dataopsIcon } from './icons';
import { CommandIDs, IDataOpsDashboard } from './tokens';
import { errorMessage } from './utils';

/**
 * The dashboards the current user may see, as the Dashboards tab lists them.
 */
export class DashboardsModel {
  constructor(options: { client: DataOpsClient }) {
    this.client = options.client;
  }

  readonly client: DataOpsClient;

  get dashboards(): IDataOpsDashboard[] | null {
    return this._dashboards;
  }

  get error(): string | null {
    return this._error;
  }

  get loading(): boolean {
    return this._loading;
  }

  get changed(): ISignal<DashboardsModel, void> {
    return this._changed;
  }

  /**
   * Fetch the list again. Never rejects: a failure is kept in `error`.
   */
  async refresh(): Promise<void> {
    this._loading = true;
    this._changed.emit();
    try {
      this._dashboards = (await this.client.listDashboards()).dashboards;
      this._error = null;
    } catch (reason) {
      this._error = errorMessage(reason);
    } finally {
      this._loading = false;
      this._changed.emit();
    }
  }

  private _dashboards: IDataOpsDashboard[] | null = null;
  private _error: string | null = null;
  private _loading = false;
  private _changed = new Signal<DashboardsModel, void>(this);
}

/**
 * A dashboard's page as a full URL: the server answers with paths of the
 * server that serves it (the team's DataOps service in team mode).
 */
export function pageUrl(path: string): string {
  return new URL(path, window.location.origin).href;
}

/**
 * A slug from a notebook's name: lower case letters, digits and dashes.
 */
export function slugOf(path: string): string {
  const stem = PathExt.basename(path, PathExt.extname(path));
  const slug = stem
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, 64) || 'dashboard';
}

function names(text: string): string[] {
  return text
    .split(',')
    .map(x => x.trim())
    .filter(x => x);
}

interface IPublishValues {
  slug: string;
  title: string;
  users: string;
  groups: string;
  live: boolean;
}

/**
 * The body of the "Publish as Dashboard" dialog.
 */
class PublishForm extends Widget {
  constructor(values: IPublishValues, error: string, trans: TranslationBundle) {
    super();
    this.addClass('jp-DataOps-publishForm');
    const field = (name: keyof IPublishValues, label: string, hint: string) => {
      const row = document.createElement('label');
      row.className = 'jp-DataOps-field';
      row.textContent = label;
      const input = document.createElement('input');
      input.className = 'jp-mod-styled';
      input.name = name;
      input.dataset.test = `dataops-publish-${name}`;
      if (name === 'live') {
        input.type = 'checkbox';
        input.checked = values.live;
      } else {
        input.type = 'text';
        input.value = String(values[name]);
        input.placeholder = hint;
      }
      row.appendChild(input);
      this.node.appendChild(row);
    };
    field('slug', trans.__('Slug (its URL)'), 'weekly-delays');
    field('title', trans.__('Title'), trans.__('default: the slug'));
    field('users', trans.__('Viewers: users'), 'alice, bob');
    field('groups', trans.__('Viewers: groups'), 'ops');
    field('live', trans.__('Offer the live view (run for each viewer, as the viewer)'), '');
    if (error) {
      const p = document.createElement('p');
      p.className = 'jp-DataOps-error';
      p.dataset.test = 'dataops-publish-error';
      p.textContent = error;
      this.node.appendChild(p);
    }
  }

  getValue(): IPublishValues {
    const get = (name: string) =>
      this.node.querySelector<HTMLInputElement>(`input[name="${name}"]`)!;
    return {
      slug: get('slug').value.trim(),
      title: get('title').value.trim(),
      users: get('users').value,
      groups: get('groups').value,
      live: get('live').checked
    };
  }
}

export interface IDashboardCommandsOptions {
  app: JupyterFrontEnd;
  model: DashboardsModel;
  trans: TranslationBundle;
  palette: ICommandPalette | null;
  targetNotebook: () => string | null;
  showDashboards: () => void;
}

/**
 * The "Publish as Dashboard" command (notebook toolbar, file browser, palette).
 */
export function addDashboardCommands(options: IDashboardCommandsOptions): void {
  const { app, model, trans, palette, targetNotebook, showDashboards } = options;
  app.commands.addCommand(CommandIDs.publishDashboard, {
    label: args =>
      args['isPalette']
        ? trans.__('Publish Notebook as Dashboard…')
        : trans.__('Publish as Dashboard…'),
    caption: trans.__(
      'Publish the notebook as a dashboard: it runs as a job, and viewers open its results without a notebook'
    ),
    icon: args => (args['isPalette'] ? undefined : dataopsIcon),
    isEnabled: args =>
      (typeof args['path'] === 'string' && args['path'] !== '') ||
      targetNotebook() !== null,
    execute: async args => {
      const path =
        typeof args['path'] === 'string' && args['path']
          ? args['path']
          : targetNotebook();
      if (!path) {
        return null;
      }
      if (app.shell.currentWidget?.title.className.includes('jp-mod-dirty')) {
        await app.commands.execute('docmanager:save');
      }
      let values: IPublishValues = {
        slug: slugOf(path),
        title: '',
        users: '',
        groups: '',
        live: false
      };
      let error = '';
      for (;;) {
        const result = await showDialog({
          title: trans.__('Publish %1 as a dashboard', PathExt.basename(path)),
          body: new PublishForm(values, error, trans),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Cancel') }),
            Dialog.okButton({ label: trans.__('Publish') })
          ]
        });
        if (!result.button.accept || result.value === null) {
          return null;
        }
        values = result.value;
        try {
          const made = await model.client.publishDashboard({
            slug: values.slug,
            title: values.title,
            notebook_path: path,
            viewers: { users: names(values.users), groups: names(values.groups) },
            live: values.live
          });
          await model.refresh();
          showDashboards();
          Notification.info(
            trans.__('Dashboard %1 published; its first run renders it.', made.slug),
            {
              autoClose: 5000,
              actions: [
                {
                  label: trans.__('Open'),
                  callback: () => window.open(pageUrl(made.url), '_blank')
                }
              ]
            }
          );
          return made.slug;
        } catch (reason) {
          error = errorMessage(reason); // shown in the dialog, with the values kept
        }
      }
    }
  });
  palette?.addItem({
    command: CommandIDs.publishDashboard,
    category: trans.__('DataOps')
  });
  app.contextMenu.addItem({
    command: CommandIDs.publishDashboard,
    selector: '.jp-DirListing-item[data-file-type="notebook"]',
    rank: 61
  });
}

/**
 * The actions of the Dashboards tab.
 */
export interface IDashboardActions {
  open: (d: IDataOpsDashboard, live?: boolean) => void;
  share: (d: IDataOpsDashboard) => Promise<void>;
  editViewers: (d: IDataOpsDashboard) => Promise<void>;
  unpublish: (d: IDataOpsDashboard) => Promise<void>;
}

export function dashboardActions(
  model: DashboardsModel,
  trans: TranslationBundle
): IDashboardActions {
  const fail = (reason: unknown) =>
    Notification.error(errorMessage(reason), { autoClose: 8000 });
  return {
    open: (d, live = false) => {
      window.open(pageUrl(live && d.live_url ? d.live_url : d.url), '_blank');
    },
    share: async d => {
      try {
        const link = await model.client.createShareLink(d.slug);
        const url = pageUrl(link.url ?? '');
        const body = document.createElement('div');
        const input = document.createElement('input');
        input.className = 'jp-mod-styled jp-DataOps-shareUrl';
        input.dataset.test = 'dataops-share-url';
        input.readOnly = true;
        input.value = url;
        const note = document.createElement('p');
        note.textContent = trans.__(
          'Anyone with this link sees this dashboard until %1. It is shown once: copy it now.',
          new Date(link.expires_at).toLocaleString()
        );
        body.append(input, note);
        const result = await showDialog({
          title: trans.__('Share link of %1', d.title),
          body: new Widget({ node: body }),
          buttons: [
            Dialog.cancelButton({ label: trans.__('Close') }),
            Dialog.okButton({ label: trans.__('Copy') })
          ]
        });
        if (result.button.accept) {
          Clipboard.copyToSystem(url);
        }
      } catch (reason) {
        fail(reason);
      }
    },
    editViewers: async d => {
      const body = document.createElement('div');
      const make = (label: string, value: string[], name: string) => {
        const row = document.createElement('label');
        row.className = 'jp-DataOps-field';
        row.textContent = label;
        const input = document.createElement('input');
        input.className = 'jp-mod-styled';
        input.name = name;
        input.value = value.join(', ');
        row.appendChild(input);
        body.appendChild(row);
        return input;
      };
      const users = make(trans.__('Users'), d.viewers.users, 'users');
      const groups = make(trans.__('Groups'), d.viewers.groups, 'groups');
      const result = await showDialog({
        title: trans.__('Viewers of %1', d.title),
        body: new Widget({ node: body }),
        buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Save') })]
      });
      if (!result.button.accept) {
        return;
      }
      try {
        await model.client.updateDashboard(d.slug, {
          viewers: { users: names(users.value), groups: names(groups.value) }
        });
        await model.refresh();
      } catch (reason) {
        fail(reason);
      }
    },
    unpublish: async d => {
      const result = await showDialog({
        title: trans.__('Unpublish %1?', d.title),
        body: trans.__(
          'Its viewers and share links lose it; its job and runs stay.'
        ),
        buttons: [
          Dialog.cancelButton(),
          Dialog.warnButton({ label: trans.__('Unpublish') })
        ]
      });
      if (!result.button.accept) {
        return;
      }
      try {
        await model.client.unpublishDashboard(d.slug);
        await model.refresh();
      } catch (reason) {
        fail(reason);
      }
    }
  };
}
