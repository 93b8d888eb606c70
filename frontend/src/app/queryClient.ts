import { createQueryClient } from '@/lib/queryClient';

/** The tab's query cache (main.tsx starts the first page's read into it before React loads). */
export const queryClient = createQueryClient();
