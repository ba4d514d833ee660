import { LabIcon } from '@jupyterlab/ui-components';

import dataopsSvgstr from '../style/icons/dataops.svg';

/**
 * The DataOps icon: a data store with a check badge.
 */
export const dataopsIcon = new LabIcon({
  name: 'jupyter-dataops:dataops',
  svgstr: dataopsSvgstr
});
