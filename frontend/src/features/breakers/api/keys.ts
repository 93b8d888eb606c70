export const breakerKeys = {
  all: ['breakers'] as const,
  list: ['breakers', 'list'] as const,
  one: (name: string) => ['breakers', 'one', name] as const,
};
