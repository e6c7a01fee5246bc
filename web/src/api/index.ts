export * from './types';
export * from './frames';
export * from './errors';
export * from './tokens';
export * from './rest';
export * from './socket';
export * from './timeline';
export * from './chat';
