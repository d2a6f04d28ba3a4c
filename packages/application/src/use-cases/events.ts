import { DomainError } from '@shop/domain';
import type { OutboxListStatus, OutboxRecordView, OutboxStore, Page } from '../ports/index.ts';

export function listEvents(
  outbox: OutboxStore,
  status: OutboxListStatus,
  limit: number,
  cursor: string | null,
): Promise<Page<OutboxRecordView>> {
  return outbox.list(status, limit, cursor);
}

/** An operator's push: the record is due now (again, if it was delivered), with its same eventId. */
export async function redeliverEvent(
  deps: { outbox: OutboxStore; wakeRelay: () => void },
  eventId: string,
): Promise<OutboxRecordView> {
  const record = await deps.outbox.redeliver(eventId);
  if (!record) throw new DomainError('EVENT_NOT_FOUND', `no event with id ${eventId}`);
  deps.wakeRelay();
  return record;
}
