import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { StatusPanel } from '../components/StatusPanel';
import { dataopsIcon } from '../icons';
import { IDataOpsStatusModel } from '../tokens';

/**
 * The id of the DataOps sidebar widget.
 */
export const SIDEBAR_ID = 'jupyter-dataops-sidebar';

/**
 * The DataOps sidebar: a Lumino shell around the React status panel. The
 * model polls only while the sidebar is visible.
 */
export class DataOpsSidebar extends ReactWidget {
  constructor(options: DataOpsSidebar.IOptions) {
    super();
    this._model = options.model;
    this._trans = options.trans;
    this.id = SIDEBAR_ID;
    this.addClass('jp-DataOps-sidebar');
    this.title.icon = dataopsIcon;
    this.title.caption = this._trans.__('DataOps');
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._model.startPolling();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._model.stopPolling();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => <StatusPanel model={this._model} trans={this._trans} />}
      </UseSignal>
    );
  }

  private _model: IDataOpsStatusModel;
  private _trans: TranslationBundle;
}

export namespace DataOpsSidebar {
  export interface IOptions {
    model: IDataOpsStatusModel;
    trans: TranslationBundle;
  }
}
