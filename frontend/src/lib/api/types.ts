// Friendly names for the server's schemas (generated into schema.ts from /openapi.json).
import type { components } from './schema';

export type Schemas = components['schemas'];
