import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { DataOpsClient } from './api/client';
import { IDataOpsStatus, IDataOpsStatusModel } from './tokens';

/**
 * The status of the DataOps server extension, refreshed on demand and, while
 * some view is visible, every `refreshInterval` seconds.
 */
export class StatusModel implements IDataOpsStatusModel {
  constructor(options: StatusModel.IOptions) {
    this._client = options.client;
    this._refreshInterval = Math.max(0, options.refreshInterval ?? 10);
    this._poll = new Poll({
      auto: false,
      factory: async () => {
        await this.refresh();
        if (this._error !== null) {
          // A rejected tick makes the poll back off.
          throw new Error(this._error);
        }
      },
      frequency: Private.frequency(this._refreshInterval),
      name: 'jupyter-dataops:status',
      // No requests while the browser tab is hidden.
      standby: 'when-hidden'
    });
  }

  get status(): IDataOpsStatus | null {
    return this._status;
  }

  get error(): string | null {
    return this._error;
  }

  get loading(): boolean {
    return this._pending !== null;
  }

  get changed(): ISignal<IDataOpsStatusModel, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get refreshInterval(): number {
    return this._refreshInterval;
  }

  set refreshInterval(seconds: number) {
    seconds = Number.isFinite(seconds) ? Math.max(0, seconds) : 0;
    if (seconds === this._refreshInterval) {
      return;
    }
    this._refreshInterval = seconds;
    if (seconds > 0) {
      this._poll.frequency = Private.frequency(seconds);
      if (this._polling) {
        void this._poll.start();
      }
    } else {
      void this._poll.stop();
    }
  }

  refresh(): Promise<void> {
    // Several callers (poll, button, command) share one request in flight.
    if (this._pending) {
      return this._pending;
    }
    this._pending = this._fetch();
    this._changed.emit();
    return this._pending;
  }

  startPolling(): void {
    this._polling = true;
    if (this._refreshInterval > 0) {
      // Ticks at once, then every `refreshInterval` seconds.
      void this._poll.start();
    } else {
      void this.refresh();
    }
  }

  stopPolling(): void {
    this._polling = false;
    void this._poll.stop();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    try {
      this._status = await this._client.getStatus();
      this._error = null;
    } catch (reason) {
      this._error =
        reason instanceof Error ? reason.message : String(reason ?? '');
    } finally {
      this._pending = null;
    }
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  private _client: DataOpsClient;
  private _status: IDataOpsStatus | null = null;
  private _error: string | null = null;
  private _pending: Promise<void> | null = null;
  private _poll: Poll;
  private _polling = false;
  private _refreshInterval: number;
  private _isDisposed = false;
  private _changed = new Signal<IDataOpsStatusModel, void>(this);
}

export namespace StatusModel {
  export interface IOptions {
    /**
     * The API client.
     */
    client: DataOpsClient;

    /**
     * Seconds between two refreshes while polling; 0 turns polling off.
     */
    refreshInterval?: number;
  }
}

namespace Private {
  /**
   * The poll frequency for an interval in seconds; failed requests back off
   * up to five minutes.
   */
  export function frequency(seconds: number): {
    interval: number;
    backoff: boolean;
    max: number;
  } {
    const interval = Math.max(1, seconds) * 1000;
    return { interval, backoff: true, max: Math.max(interval, 300 * 1000) };
  }
}
