/** Who has a live stream open on this instance, per channel (presence across instances comes later). */
export class OnlineUsers {
  private readonly byChannel = new Map<string, Map<string, number>>();

  /** Marks the user online in the channel; call the result when the stream ends. */
  enter(channelId: string, userId: string): () => void {
    const users = this.byChannel.get(channelId) ?? new Map<string, number>();
    this.byChannel.set(channelId, users);
    users.set(userId, (users.get(userId) ?? 0) + 1);
    return () => {
      const left = (users.get(userId) ?? 1) - 1;
      if (left > 0) users.set(userId, left);
      else users.delete(userId);
      if (users.size === 0) this.byChannel.delete(channelId);
    };
  }

  isOnline(channelId: string, userId: string): boolean {
    return this.byChannel.get(channelId)?.has(userId) ?? false;
  }
}
