export { makeTempDir, removeTempDir, removeTempDirSync, tempParent, TEST_TMPDIR_ENV } from '@shop/local-clusters';
