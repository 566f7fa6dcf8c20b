/**
 * The data layer of `@diffssl/eval`: datasets (IDX, image folders, in-memory
 * arrays, subset lists), the reference's PIL-exact preprocessing, and seeded,
 * resumable epochs of model-ready batches.
 *
 * @packageDocumentation
 */
export { arrayDataset, numberedClasses, type ArrayDatasetOptions } from './array-dataset.js';
export {
  batchCount,
  epochBatches,
  epochOrder,
  applyTransform,
  iterateBatches,
  loadBatch,
  type Batch,
  type BatchOptions,
  type EpochBatch,
  type EpochPlan,
  type IterateOptions,
} from './batches.js';
export { subsetDataset, takeFirst, type Dataset, type Example } from './dataset.js';
export { decodeImage } from './decode.js';
export { FASHION_MNIST_CLASSES, hasIdxFiles, parseIdx, readIdxDataset, readIdxFile, type IdxArray, type IdxDatasetOptions, type IdxSplit } from './idx.js';
export { listClassFolders, readImageFolder, type ImageFolderDataset, type ImageFolderOptions } from './image-folder.js';
export { openDataset, type OpenDatasetOptions } from './open.js';
export { resizeImage, type ResampleFilter } from './resample.js';
export { readSubsetList, selectSubsetList } from './subset-list.js';
export { centerCrop, cropImage, randomCrop, resizeSmallerSide, type ImageTransform, type RandomCropDraw } from './transforms.js';
