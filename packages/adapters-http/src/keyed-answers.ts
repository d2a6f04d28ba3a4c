import type { Order } from '@shop/domain';

/** The content type Fastify gives an answer its route serialized: a string sent with it goes out as it is. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * The body of a keyed order's first answer, made once and sent again for each replay this instance
 * answers from memory: placeOrder gives a key's first answer and those replays as one Order object
 * (ADR 0016), so its bytes are kept against that object and go when the memory lets it go. A replay
 * then costs no presenting, no schema encoding and no JSON of its own; a flash sale's retries are
 * mostly such replays. `render` must be the route's own serializer, so that the bytes are those the
 * route would have sent.
 */
export function keyedAnswers(render: (order: Order) => string): (order: Order) => string {
  const bodies = new WeakMap<Order, string>();
  return (order) => {
    let body = bodies.get(order);
    if (body === undefined) {
      body = render(order);
      bodies.set(order, body);
    }
    return body;
  };
}
