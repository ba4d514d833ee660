import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { errorMessage } from './utils';

/**
 * A model fetched from the server on demand and, while a view asks for it,
 * by a poll that backs off after failures and waits while the browser tab
 * is hidden. Subclasses say what to fetch in `load()`.
 */
export abstract class PolledModel implements IDisposable {
  constructor(options: PolledModel.IOptions) {
    this.poll = new Poll({
      auto: false,
      factory: async () => {
        await this.refresh();
        if (this._error !== null) {
          // A rejected tick makes the poll back off.
          throw new Error(this._error);
        }
      },
      frequency: pollFrequency(options.interval),
      name: options.name,
      // No requests while the browser tab is hidden.
      standby: 'when-hidden'
    });
  }

  /**
   * The message of the last failed request, or `null` after a success.
   */
  get error(): string | null {
    return this._error;
  }

  /**
   * Whether a request is under way.
   */
  get loading(): boolean {
    return this._pending !== null;
  }

  /**
   * Emitted whenever the data, `error` or `loading` changes.
   */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Fetch now. Never rejects: a failure is kept in `error`. Several callers
   * (poll, button, command) share one request in flight.
   */
  refresh(): Promise<void> {
    if (this._pending) {
      return this._pending;
    }
    this._pending = this._fetch();
    this._changed.emit();
    return this._pending;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.poll.dispose();
    Signal.clearData(this);
  }

  /**
   * Fetch and keep the data; throw on failure.
   */
  protected abstract load(): Promise<void>;

  /**
   * Tell the views that the data changed.
   */
  protected emitChanged(): void {
    if (!this._isDisposed) {
      this._changed.emit();
    }
  }

  protected readonly poll: Poll;

  private async _fetch(): Promise<void> {
    try {
      await this.load();
      this._error = null;
    } catch (reason) {
      this._error = errorMessage(reason);
    } finally {
      this._pending = null;
    }
    this.emitChanged();
  }

  private _error: string | null = null;
  private _pending: Promise<void> | null = null;
  private _isDisposed = false;
  private _changed = new Signal<this, void>(this);
}

export namespace PolledModel {
  export interface IOptions {
    /**
     * The poll's name, e.g. `jupyter-dataops:status`.
     */
    name: string;

    /**
     * Seconds between two ticks.
     */
    interval: number;
  }
}

/**
 * The poll frequency for an interval in seconds; failed requests back off
 * up to five minutes.
 */
export function pollFrequency(seconds: number): {
  interval: number;
  backoff: boolean;
  max: number;
} {
  const interval = Math.max(1, seconds) * 1000;
  return { interval, backoff: true, max: Math.max(interval, 300 * 1000) };
}
