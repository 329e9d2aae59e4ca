// Every staff member (staff, supervisors, admins), for assigning conversations and filling
// queues: the users route filtered to staff, page after page by username.
import type { User } from "../types";

export const STAFF_PAGE = 50; // the route's largest page
export const STAFF_PAGES_MAX = 40; // 2,000 staff: a bound on the requests, not an expected size

export async function fetchStaff(get: (path: string) => Promise<{ users: User[] }>): Promise<User[]> {
  const all: User[] = [];
  let after = "";
  for (let page = 0; page < STAFF_PAGES_MAX; page++) {
    const { users } = await get(`/api/v1/users?staff=true&limit=${STAFF_PAGE}&after=${encodeURIComponent(after)}`);
    all.push(...users);
    if (users.length < STAFF_PAGE) break;
    after = users[users.length - 1].username;
  }
  return all;
}
