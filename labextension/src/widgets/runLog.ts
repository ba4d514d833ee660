import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { DataOpsClient } from '../api/client';
import { dataopsIcon } from '../icons';
import { errorMessage } from '../utils';

/**
 * The log of a run (the cells' stdout and stderr), followed live through
 * the server-sent events of `GET runs/{id}/log` until the run ends.
 */
export class RunLogView extends Widget {
  constructor(options: RunLogView.IOptions) {
    super();
    this.runId = options.runId;
    this._client = options.client;
    this._trans = options.trans;
    this.addClass('jp-DataOps-runLog');
    this.node.dataset.test = 'dataops-run-log-view';
    this.node.dataset.id = this.runId;
    this._state = document.createElement('div');
    this._state.className = 'jp-DataOps-runLog-state';
    this._state.dataset.test = 'dataops-run-log-state';
    this._pre = document.createElement('pre');
    this._pre.className = 'jp-DataOps-runLog-text';
    this._pre.dataset.test = 'dataops-run-log-text';
    this.node.append(this._state, this._pre);
    this._setState(this._trans.__('Following the log…'), 'following');
  }

  /**
   * The run whose log is shown.
   */
  readonly runId: string;

  dispose(): void {
    this._abort?.abort();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this._abort === null) {
      void this._follow();
    }
  }

  private async _follow(): Promise<void> {
    const abort = new AbortController();
    this._abort = abort;
    this._setState(this._trans.__('Following the log…'), 'following');
    let lines = 0;
    try {
      const end = await this._client.followRunLog(
        this.runId,
        line => {
          lines++;
          const atBottom =
            this.node.scrollTop + this.node.clientHeight >=
            this.node.scrollHeight - 4;
          this._pre.append(line + '\n');
          if (atBottom) {
            this.node.scrollTop = this.node.scrollHeight;
          }
        },
        abort.signal
      );
      if (end === null) {
        return;
      }
      this._setState(
        lines === 0
          ? this._trans.__('The run %1. Its log is empty.', end)
          : this._trans.__('The run %1.', end),
        end
      );
    } catch (reason) {
      if (!abort.signal.aborted) {
        this._setState(errorMessage(reason), 'error');
      }
    }
  }

  private _setState(text: string, state: string): void {
    this._state.textContent = text;
    this._state.dataset.state = state;
  }

  private _client: DataOpsClient;
  private _trans: TranslationBundle;
  private _abort: AbortController | null = null;
  private _state: HTMLDivElement;
  private _pre: HTMLPreElement;
}

export namespace RunLogView {
  export interface IOptions {
    client: DataOpsClient;
    runId: string;
    trans: TranslationBundle;
  }
}

/**
 * The id of the main-area widget with a run's log.
 */
export function runLogWidgetId(runId: string): string {
  return `jupyter-dataops-run-log-${runId}`;
}

/**
 * A run's log in a main-area tab.
 */
export function createRunLogWidget(
  options: RunLogView.IOptions & { label: string }
): MainAreaWidget<RunLogView> {
  const content = new RunLogView(options);
  const widget = new MainAreaWidget({ content });
  widget.id = runLogWidgetId(options.runId);
  widget.addClass('jp-DataOps-runLogPanel');
  widget.title.label = options.trans.__('Log: %1', options.label);
  widget.title.caption = options.trans.__('Log of run %1', options.runId);
  widget.title.icon = dataopsIcon;
  widget.title.closable = true;
  return widget;
}
