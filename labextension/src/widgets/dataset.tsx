import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  addToolbarButtonClass,
  copyIcon,
  ReactWidget,
  refreshIcon,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { DatasetPanel } from '../components/DatasetPanel';
import { dataopsIcon } from '../icons';
import { DatasetModel } from '../model';

/**
 * The React view of one dataset, re-rendered when its model changes.
 */
export class DatasetView extends ReactWidget {
  constructor(options: DatasetView.IOptions) {
    super();
    this.model = options.model;
    this._trans = options.trans;
    this.addClass('jp-DataOps-datasetWidget');
  }

  /**
   * The dataset shown.
   */
  readonly model: DatasetModel;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.dispose();
    super.dispose();
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <DatasetPanel model={this.model} trans={this._trans} />}
      </UseSignal>
    );
  }

  private _trans: TranslationBundle;
}

export namespace DatasetView {
  export interface IOptions {
    model: DatasetModel;
    trans: TranslationBundle;
  }
}

/**
 * A dataset in a main-area tab, with "Refresh" and "Copy pull code" in its
 * toolbar.
 */
export type DatasetWidget = MainAreaWidget<DatasetView>;

/**
 * The id of the main-area widget of a dataset.
 */
export function datasetWidgetId(name: string): string {
  return `jupyter-dataops-dataset-${name}`;
}

/**
 * Create the main-area widget of a dataset and start loading it.
 */
export function createDatasetWidget(
  options: ICreateDatasetWidgetOptions
): DatasetWidget {
  const { model, trans, copyPullCode } = options;
  const content = new DatasetView({ model, trans });
  const widget = new MainAreaWidget({ content });
  widget.id = datasetWidgetId(model.name);
  widget.addClass('jp-DataOps-datasetPanel');
  widget.title.label = model.name;
  widget.title.caption = trans.__('Dataset %1', model.name);
  widget.title.icon = dataopsIcon;
  widget.title.closable = true;

  // Stateless buttons: a ToolbarButton would toggle `aria-pressed` on each click.
  widget.toolbar.addItem(
    'refresh',
    Private.button({
      icon: refreshIcon,
      label: trans.__('Refresh'),
      tooltip: trans.__('Load the dataset and its preview again'),
      dataset: { test: 'dataops-dataset-refresh' },
      noFocusOnClick: true,
      onClick: () => void model.load()
    })
  );
  widget.toolbar.addItem(
    'copy-pull-code',
    Private.button({
      icon: copyIcon,
      label: trans.__('Copy pull code'),
      tooltip: trans.__('Copy %1 to the clipboard', model.pullCode),
      dataset: { test: 'dataops-copy-pull' },
      noFocusOnClick: true,
      onClick: copyPullCode
    })
  );

  model.changed.connect(() => {
    const title = model.detail?.title;
    widget.title.caption = title
      ? trans.__('%1 (dataset %2)', title, model.name)
      : trans.__('Dataset %1', model.name);
  }, widget);

  void model.load();
  return widget;
}

export interface ICreateDatasetWidgetOptions {
  model: DatasetModel;
  trans: TranslationBundle;

  /**
   * Copy the code that pulls the dataset (runs the copy command).
   */
  copyPullCode: () => void;
}

namespace Private {
  export function button(props: ToolbarButtonComponent.IProps): ReactWidget {
    return addToolbarButtonClass(
      ReactWidget.create(<ToolbarButtonComponent {...props} />)
    );
  }
}
