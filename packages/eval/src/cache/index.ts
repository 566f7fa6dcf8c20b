export {
  canonicalJson,
  canonicalKey,
  checkpointDigest,
  dataIdentity,
  drawSeed,
  keyDigest,
  type CanonicalFeatureCacheKey,
  type DataIdentityParts,
  type FeatureCacheKey,
} from './key.js';
export { parseShard, shardRange, type CacheShardEntry, type CacheTensorEntry, type FeatureCacheIndex } from './format.js';
export { FeatureCache, openFeatureCache } from './reader.js';
export { featureCachePath, featureNames, findFeatureCache, writeFeatureCache, type CacheFeatureBatch, type WriteFeatureCacheOptions } from './writer.js';
export { mergeShards, type MergeShardsOptions } from './merge.js';
export { featureBatchesForDraws, type ExtractorFeatureBatch } from './extractor-adapter.js';
