// The app's routes. The server answers a browser navigation to exactly these (and anything
// under them) with index.html, so keep this list and the server's in step.
export const paths = {
  dashboard: '/',
  login: '/login',
  forbidden: '/forbidden',
  governance: '/governance',
  budget: '/budget',
  dlq: '/dlq',
  breakers: '/breakers',
  sandbox: '/sandbox',
  audit: '/audit',
  users: '/users',
} as const;

export type PathKey = keyof typeof paths;
