/**
 * What a stream needs of the signal that stops it: whether it has stopped, and listeners told once
 * when it does. An AbortSignal is one. apps/server's WebSocket subscriptions are their own: an
 * AbortController per subscription, with its EventTarget and their two Maps, was about 0.75 KiB of
 * what every subscribed connection kept, and creating it showed in the connect path's profile.
 */
export interface StopSignal {
  readonly aborted: boolean;
  addEventListener(type: "abort", listener: StopListener, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: StopListener): void;
}

export interface StopListener {
  handleEvent(): void;
}
