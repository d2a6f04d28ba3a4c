/** Relay settings for delivery tests: failures retried within a test's patience, not a minute's. */

/** An in-process service: a short platform timeout and quick retries. */
export const FAST_RETRIES = {
  DATA_PLATFORM_TIMEOUT_MS: '300',
  OUTBOX_RETRY_BASE_MS: '50',
  OUTBOX_RETRY_MAX_MS: '400',
  OUTBOX_POLL_MS: '200',
};

/** A service in its own process, killed and restarted: also a short lease, so a dead relay's claims expire soon. */
export const RELAY_ENV = {
  DATA_PLATFORM_TIMEOUT_MS: '500',
  OUTBOX_LEASE_MS: '1500',
  OUTBOX_RETRY_BASE_MS: '50',
  OUTBOX_RETRY_MAX_MS: '500',
  OUTBOX_POLL_MS: '200',
};
