/** See startup-stages.mjs. */
export declare const startupStages: string[];
