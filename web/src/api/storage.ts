import { api, seg, xhrUpload, type UploadProgress } from "./client";
import type { Bucket, SignedUpload, StorageObject } from "./types";

const base = (projectId: string) => `/projects/${seg(projectId)}/buckets`;

export const storageApi = {
  buckets: (projectId: string) => api.get<{ buckets: Bucket[] }>(base(projectId)).then((r) => r.buckets),
  createBucket: (projectId: string, name: string) => api.post<Bucket>(base(projectId), { name }),
  deleteBucket: (projectId: string, name: string, confirm?: string) =>
    api.del<void>(`${base(projectId)}/${seg(name)}`, confirm ? { confirm } : undefined),
  objects: (projectId: string, bucket: string, params: { prefix?: string; cursor?: string | null; limit?: number }) =>
    api.get<{ objects: StorageObject[]; next_cursor: string | null }>(`${base(projectId)}/${seg(bucket)}/objects`, {
      prefix: params.prefix,
      cursor: params.cursor ?? undefined,
      limit: params.limit,
    }),
  signedUpload: (projectId: string, bucket: string, body: { path: string; contentType: string; maxSize: number }) =>
    api.post<SignedUpload>(`${base(projectId)}/${seg(bucket)}/signed-upload`, body),
  downloadUrl: (projectId: string, bucket: string, objectKey: string) =>
    api.get<{ downloadUrl: string; expiresIn: number }>(`${base(projectId)}/${seg(bucket)}/objects/download`, {
      objectKey,
    }),
  deleteObject: (projectId: string, bucket: string, objectKey: string) =>
    api.del<void>(`${base(projectId)}/${seg(bucket)}/objects?objectKey=${encodeURIComponent(objectKey)}`),

  /** Signed-URL upload: ask the admin API for a signed URL, then PUT the file to
   * it with XMLHttpRequest so the progress bar can follow upload events. */
  async upload(
    projectId: string,
    bucket: string,
    path: string,
    file: File,
    onProgress?: (p: UploadProgress) => void,
    signal?: AbortSignal,
  ): Promise<SignedUpload> {
    const contentType = file.type || "application/octet-stream";
    const signed = await storageApi.signedUpload(projectId, bucket, { path, contentType, maxSize: file.size });
    await xhrUpload({
      method: "PUT",
      url: signed.uploadUrl,
      body: file,
      headers: { "content-type": contentType },
      onProgress,
      signal,
    });
    return signed;
  },
};
