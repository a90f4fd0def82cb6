/*
 * libssh's SFTP client (the C library of KDE's sftp://, Remmina and others,
 * not libssh2) driven against a capstan gateway, for test/sftp/libssh.test.ts.
 *
 * Usage: libssh-client PORT USER PASSWORD LOCAL_IN LOCAL_OUT
 *
 * Logs in with the password, then, in /ls: uploads LOCAL_IN in 64 KiB
 * writes, downloads it to LOCAL_OUT, overwrites and fsyncs a file, makes a
 * symbolic link and reads it back, renames, sets times, lists the folder,
 * asks statvfs, and tries what must fail. Prints one JSON object of what it
 * saw; exits 1 when a step that must succeed fails.
 */
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static sftp_session sftp;

static void must(int ok, const char *what) {
  if (ok) return;
  fprintf(stderr, "%s failed: sftp error %d\n", what, sftp ? sftp_get_error(sftp) : -1);
  exit(1);
}

/* The SFTP status a call that must fail left, or -1 if it succeeded. */
static int failed_with(int rc) { return rc < 0 ? sftp_get_error(sftp) : -1; }

static int upload(const char *local, const char *remote) {
  FILE *in = fopen(local, "rb");
  must(in != NULL, "fopen LOCAL_IN");
  sftp_file f = sftp_open(sftp, remote, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  must(f != NULL, "sftp_open for writing");
  static char buf[65536];
  size_t n;
  int total = 0;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
    must(sftp_write(f, buf, n) == (ssize_t)n, "sftp_write");
    total += (int)n;
  }
  fclose(in);
  must(sftp_close(f) == SSH_OK, "sftp_close after writing");
  return total;
}

static int download(const char *remote, const char *local) {
  FILE *out = fopen(local, "wb");
  must(out != NULL, "fopen LOCAL_OUT");
  sftp_file f = sftp_open(sftp, remote, O_RDONLY, 0);
  must(f != NULL, "sftp_open for reading");
  static char buf[65536];
  ssize_t n;
  int total = 0;
  while ((n = sftp_read(f, buf, sizeof buf)) > 0) {
    fwrite(buf, 1, (size_t)n, out);
    total += (int)n;
  }
  must(n == 0, "sftp_read");
  fclose(out);
  sftp_close(f);
  return total;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: libssh-client PORT USER PASSWORD LOCAL_IN LOCAL_OUT\n");
    return 2;
  }
  ssh_session ssh = ssh_new();
  int port = atoi(argv[1]);
  ssh_options_set(ssh, SSH_OPTIONS_HOST, "127.0.0.1");
  ssh_options_set(ssh, SSH_OPTIONS_PORT, &port);
  ssh_options_set(ssh, SSH_OPTIONS_USER, argv[2]);
  if (ssh_connect(ssh) != SSH_OK) {
    fprintf(stderr, "connect: %s\n", ssh_get_error(ssh));
    return 1;
  }
  /* The gateway's host key is not checked: the test started it on loopback a moment ago. */
  if (ssh_userauth_password(ssh, NULL, argv[3]) != SSH_AUTH_SUCCESS) {
    fprintf(stderr, "password login: %s\n", ssh_get_error(ssh));
    return 1;
  }
  sftp = sftp_new(ssh);
  must(sftp != NULL && sftp_init(sftp) == SSH_OK, "sftp_init");

  must(sftp_mkdir(sftp, "/ls", 0755) == 0, "sftp_mkdir");
  int uploaded = upload(argv[4], "/ls/up.bin");
  int downloaded = download("/ls/up.bin", argv[5]);

  /* Overwrite the start of an existing file in place, then fsync@openssh.com. */
  sftp_file f = sftp_open(sftp, "/ls/edit.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  must(f != NULL && sftp_write(f, "hello world", 11) == 11 && sftp_close(f) == SSH_OK, "write edit.txt");
  f = sftp_open(sftp, "/ls/edit.txt", O_WRONLY, 0);
  must(f != NULL && sftp_write(f, "J", 1) == 1, "overwrite edit.txt");
  must(sftp_fsync(f) == 0, "sftp_fsync");
  must(sftp_close(f) == SSH_OK, "close edit.txt");

  /* libssh sends the link's path first to a server that is not OpenSSH. */
  must(sftp_symlink(sftp, "up.bin", "/ls/link") == 0, "sftp_symlink");
  char *target = sftp_readlink(sftp, "/ls/link");
  sftp_attributes through = sftp_stat(sftp, "/ls/link");
  sftp_attributes of_link = sftp_lstat(sftp, "/ls/link");
  must(through != NULL && of_link != NULL, "stat and lstat of the link");

  must(sftp_rename(sftp, "/ls/edit.txt", "/ls/edited.txt") == 0, "sftp_rename");
  struct timeval times[2] = {{1000000000, 0}, {1200000000, 0}};
  must(sftp_utimes(sftp, "/ls/edited.txt", times) == 0, "sftp_utimes");
  sftp_attributes edited = sftp_stat(sftp, "/ls/edited.txt");
  must(edited != NULL, "stat edited.txt");

  sftp_dir dir = sftp_opendir(sftp, "/ls");
  must(dir != NULL, "sftp_opendir");
  int entries = 0;
  sftp_attributes a;
  while ((a = sftp_readdir(sftp, dir)) != NULL) {
    if (strcmp(a->name, ".") != 0 && strcmp(a->name, "..") != 0) entries++;
    sftp_attributes_free(a);
  }
  must(sftp_dir_eof(dir), "sftp_readdir to the end");
  sftp_closedir(dir);

  sftp_statvfs_t vfs = sftp_statvfs(sftp, "/ls");
  char *real = sftp_canonicalize_path(sftp, "/ls/../ls/./up.bin");

  int open_in_missing = failed_with(sftp_open(sftp, "/ls/nodir/x", O_WRONLY | O_CREAT, 0644) == NULL ? -1 : 0);
  int rmdir_not_empty = failed_with(sftp_rmdir(sftp, "/ls"));
  int unlink_missing = failed_with(sftp_unlink(sftp, "/ls/nope"));
  int symlink_over_file = failed_with(sftp_symlink(sftp, "x", "/ls/up.bin"));

  printf("{\"uploaded\": %d, \"downloaded\": %d, \"readlink\": \"%s\", \"linkIsLink\": %s, \"throughLinkSize\": %llu, "
         "\"editedSize\": %llu, \"mtime\": %u, \"entries\": %d, \"statvfs\": %s, \"canonical\": \"%s\", "
         "\"openInMissingDir\": %d, \"rmdirNotEmpty\": %d, \"unlinkMissing\": %d, \"symlinkOverFile\": %d}\n",
         uploaded, downloaded, target ? target : "", of_link->type == SSH_FILEXFER_TYPE_SYMLINK ? "true" : "false",
         (unsigned long long)through->size, (unsigned long long)edited->size, edited->mtime, entries,
         vfs != NULL && vfs->f_bsize > 0 ? "true" : "false", real ? real : "", open_in_missing, rmdir_not_empty,
         unlink_missing, symlink_over_file);
  sftp_free(sftp);
  ssh_disconnect(ssh);
  ssh_free(ssh);
  return 0;
}
