#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  int l=socket(AF_INET,SOCK_STREAM,0); struct sockaddr_in a={0}; a.sin_family=AF_INET; a.sin_addr.s_addr=htonl(0x7f000001); a.sin_port=0;
  bind(l,(void*)&a,sizeof a); listen(l,16); socklen_t al=sizeof a; getsockname(l,(void*)&a,&al);
  int c=socket(AF_INET,SOCK_STREAM,0); connect(c,(void*)&a,sizeof a); int s=accept(l,0,0);
  int on=1; ioctl(s,FIONBIO,&on);
  int ep=epoll_create1(0); struct epoll_event ev={.events=EPOLLIN|EPOLLPRI|EPOLLERR|EPOLLHUP|EPOLLET}; epoll_ctl(ep,EPOLL_CTL_ADD,s,&ev);
  const int N=200000; char b[1];
  for(int r=0;r<3;r++){
  double t0=now(); for(int i=0;i<N;i++) epoll_ctl(ep,EPOLL_CTL_MOD,s,&ev);
  double t1=now(); for(int i=0;i<N;i++) recv(s,b,1,0);
  double t2=now(); for(int i=0;i<N;i++) ioctl(s,FIONBIO,&on);
  double t3=now(); for(int i=0;i<N;i++) getppid();
  double t4=now();
  printf("MOD %.0f ns  recv-EAGAIN %.0f ns  ioctl %.0f ns  getppid %.0f ns\n",(t1-t0)/N*1e9,(t2-t1)/N*1e9,(t3-t2)/N*1e9,(t4-t3)/N*1e9);}
}
