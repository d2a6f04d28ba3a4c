import {
  chargeUserBalance,
  createCoupon,
  createProduct,
  createUser,
  grantCoupon,
  type Actor,
  type Clock,
  type UnitOfWork,
} from '@shop/application';

export interface SeededDemo {
  readonly userIds: number[];
  readonly productIds: number[];
  readonly couponId: number;
}

/** Seeding is the operator's setting up of the shop. */
const OPERATOR: Actor = { role: 'admin' };

/** A small shop a newcomer can order from at once: three users with money, products, a coupon. */
export async function seedDemo(deps: { uow: UnitOfWork; clock: Clock }): Promise<SeededDemo> {
  const users = [
    { name: '김민지', balance: 100_000 },
    { name: '이준호', balance: 50_000 },
    { name: '박서연', balance: 10_000 },
  ];
  const userIds: number[] = [];
  for (const u of users) {
    const { userId } = await createUser(deps.uow, OPERATOR, u.name);
    await chargeUserBalance(deps, { actor: OPERATOR, userId, amount: u.balance });
    userIds.push(userId);
  }
  const products = [
    { name: '아메리카노 원두 1kg', price: 25_000, stock: 100 },
    { name: '무선 이어폰', price: 89_000, stock: 20 },
    { name: '텀블러', price: 15_000, stock: 200 },
    { name: '한정판 운동화', price: 159_000, stock: 5 },
    { name: '에코백', price: 1_500, stock: 1_000 },
  ];
  const productIds: number[] = [];
  for (const p of products) productIds.push((await createProduct(deps.uow, OPERATOR, p)).productId);
  const coupon = await createCoupon(deps.uow, OPERATOR, {
    name: '신규 가입 3,000원 할인',
    discountType: 'FIXED',
    discountValue: 3_000,
    totalQuantity: 100,
    minOrderAmount: 10_000,
  });
  await grantCoupon(deps, OPERATOR, coupon.couponId, userIds[0]!);
  return { userIds, productIds, couponId: coupon.couponId };
}
