import { ProblemResponse } from '../schemas.ts';

export const USER_SECURITY = [{ bearerAuth: [] }];
export const errorResponses = { '4xx': ProblemResponse, '5xx': ProblemResponse } as const;
