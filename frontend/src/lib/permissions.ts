// Permission names as the server spells them (docs/permissions.md).
export const perm = {
  readBudget: 'read:budget',
  writeBudget: 'write:budget',
  adminBudget: 'admin:budget',
  readDlq: 'read:dlq',
  writeDlq: 'write:dlq',
  readBreakers: 'read:breakers',
  writeBreakers: 'write:breakers',
  adminResetBreakers: 'admin:reset_breakers',
  readGovernance: 'read:governance',
  readSystem: 'read:system',
  readAudit: 'read:audit',
  executeCode: 'execute:code',
  adminUsers: 'admin:users',
} as const;

export type Permission = (typeof perm)[keyof typeof perm];
