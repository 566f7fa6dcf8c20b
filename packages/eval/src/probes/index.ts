export type { ProbeBackend, ProbeComputeOptions } from './backend.js';
export { poolFeatures } from './pool.js';
export { RidgeAccumulator, RidgeModel, ridgeProbe, type RidgeOptions, type RidgeProbeInput } from './ridge.js';
export { knnClassify, knnProbe, type KnnOptions, type KnnProbeInput } from './knn.js';
