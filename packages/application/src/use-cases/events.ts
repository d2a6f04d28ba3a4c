import { DomainError } from '@shop/domain';
import { assertAdmin, type Actor } from '../authorization.ts';
import type { OutboxListStatus, OutboxRecordView, OutboxStore, Page } from '../ports/index.ts';

export async function listEvents(
  outbox: OutboxStore,
  actor: Actor,
  status: OutboxListStatus,
  limit: number,
  cursor: string | null,
): Promise<Page<OutboxRecordView>> {
  assertAdmin(actor);
  return outbox.list(status, limit, cursor);
}

/** An operator's push: the record is due now (again, if it was delivered), with its same eventId. */
export async function redeliverEvent(
  deps: { outbox: OutboxStore; wakeRelay: () => void },
  actor: Actor,
  eventId: string,
): Promise<OutboxRecordView> {
  assertAdmin(actor);
  const record = await deps.outbox.redeliver(eventId);
  if (!record) throw new DomainError('EVENT_NOT_FOUND', `no event with id ${eventId}`);
  deps.wakeRelay();
  return record;
}
