/**
 * What the benchmark (apps/bench) shares beyond processes: the "each received once" check of
 * delivered events.
 */
export { receivedOnce } from './deliveries.ts';
