import pg from 'pg';
import type { RelayWakeChannel } from '@shop/application';

const CHANNEL = 'order_service_outbox';

/**
 * Wakes relays in other processes through LISTEN/NOTIFY. The NOTIFY is sent after the order's
 * commit, not inside its transaction: PostgreSQL serialises the commits of notifying transactions
 * on one global lock, which would lengthen exactly the transactions that hold a hot product row.
 * Announcements are coalesced: at most one NOTIFY in flight, one more queued behind it.
 */
export class PgWakeChannel implements RelayWakeChannel {
  private readonly pool: pg.Pool;
  private readonly connectionString: string;
  private listener: pg.Client | null = null;
  private closed = false;
  private sending = false;
  private again = false;

  constructor(pool: pg.Pool, connectionString: string) {
    this.pool = pool;
    this.connectionString = connectionString;
  }

  announce(): void {
    if (this.closed) return;
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = true;
    this.pool
      .query(`NOTIFY ${CHANNEL}`)
      .catch(() => undefined) // polling is the safety net
      .finally(() => {
        this.sending = false;
        if (this.again) {
          this.again = false;
          this.announce();
        }
      });
  }

  async listen(onWake: () => void): Promise<void> {
    const connect = async (): Promise<void> => {
      if (this.closed) return;
      const client = new pg.Client({ connectionString: this.connectionString, application_name: 'order-service-relay-listener' });
      let retried = false;
      const retry = () => {
        if (retried) return;
        retried = true;
        if (this.listener === client) this.listener = null;
        client.end().catch(() => undefined);
        if (!this.closed) setTimeout(() => void connect().catch(() => undefined), 1_000).unref();
      };
      client.on('error', retry);
      client.on('notification', () => onWake());
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
        this.listener = client;
        // Anything committed while we were not listening is found by this wake-up.
        onWake();
      } catch {
        retry();
      }
    };
    await connect();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }
}
