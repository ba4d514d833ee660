import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IDataOpsAccess } from '../tokens';

/**
 * "read" or "no access", with the policy's reason as tooltip.
 */
export function AccessBadge(props: {
  access: IDataOpsAccess;
  trans: TranslationBundle;
}): JSX.Element {
  const { access, trans } = props;
  const label = access.allowed ? trans.__('read') : trans.__('no access');
  return (
    <span
      className={`jp-DataOps-badge ${access.allowed ? 'jp-mod-allowed' : 'jp-mod-denied'}`}
      data-test="dataops-dataset-access"
      data-allowed={String(access.allowed)}
      title={access.reason}
      aria-label={`${label}: ${access.reason}`}
    >
      {label}
    </span>
  );
}

/**
 * What the policy changes for the current user: a row filter and masked
 * columns. Nothing when the data is seen as is.
 */
export function AccessHints(props: {
  access: IDataOpsAccess;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { access, trans } = props;
  const masked = access.masked_columns;
  if (!access.allowed || (!access.row_filter && masked.length === 0)) {
    return null;
  }
  return (
    <span className="jp-DataOps-hints">
      {access.row_filter && (
        <span
          className="jp-DataOps-hint"
          data-test="dataops-dataset-filtered"
          title={trans.__('A row filter limits the rows you see.')}
        >
          {trans.__('filtered')}
        </span>
      )}
      {masked.length > 0 && (
        <span
          className="jp-DataOps-hint"
          data-test="dataops-dataset-masked"
          title={trans.__('You see these columns masked.')}
        >
          {trans.__('masked: %1', masked.join(', '))}
        </span>
      )}
    </span>
  );
}
