export { psnrLoss, l1Loss } from './pixel.js';
